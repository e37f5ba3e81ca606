"""Requests stay sayable on odd specs: empty values, non-dict schemas, summaries that are links, routes or
run into their description, placeholder descriptions; and one internal error never ends a run."""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

import pytest

from inftool_env.spec import ToolSpec, load_spec
from inftool_env.synth import phrasing as ph
from inftool_env.synth import run as synth_run
from inftool_env.synth import synthesize
from inftool_env.synth.answers import bfcl_doc
from inftool_env.synth.context import Skip
from inftool_env.synth.world import open_world

CORPUS = Path("/work/shared/corpus/openapi")
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared spec corpus is not on this machine")


def openapi(operations: dict[str, dict[str, dict]]) -> dict:
    """An OpenAPI 3 document from ``{path: {method: operation}}``; every operation answers 200."""
    for methods in operations.values():
        for operation in methods.values():
            operation.setdefault("responses", {"200": {"description": "OK"}})
    return {"openapi": "3.0.0", "info": {"title": "Odd", "version": "1"}, "paths": operations}


def tools(document: dict) -> dict[str, ToolSpec]:
    return {t.original_name: t for t in load_spec(document).tools}


def one_tool(operation: dict, path: str = "/things", method: str = "get") -> ToolSpec:
    """The one tool of ``operation`` at ``path``; the path's parameters declared where the operation does not."""
    declared = {p["name"] for p in operation.get("parameters", [])}
    for name in re.findall(r"\{(\w+)\}", path):
        if name not in declared:
            operation.setdefault("parameters", []).append(path_param(name, ""))
    (tool,) = tools(openapi({path: {method: operation}})).values()
    return tool


def path_param(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def rename_spec() -> list[dict]:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    return [{"name": "rename", "description": "Rename a file.", "parameters": schema}]


# 1. crashes


def test_an_empty_list_is_said_as_such():
    rng = random.Random(0)
    assert ph.say_value([], rng) == "an empty list"
    assert "an empty list" in ph.say_value({"endpoint": []}, rng)
    assert ph.say_value({}, rng) == "an empty object"


def test_a_spec_whose_array_must_be_empty_synthesizes(tmp_path):
    spec = [
        {"name": "send_batch", "description": "Send a batch.", "parameters": {"type": "object", "required": ["batch"],
         "properties": {"batch": {"type": "array", "items": {"type": "string"}, "maxItems": 0}}}},
        *rename_spec(),
    ]  # fmt: skip
    path = tmp_path / "empty_array.json"
    path.write_text(json.dumps(spec))
    run = synthesize(path, n=12, seed=0, categories=["simple"])
    assert any(c.name == "send_batch" for t in run.tasks for turn in t.ground_truth for c in turn)


def test_a_boolean_property_schema_becomes_a_bfcl_doc():
    schema = {"type": "object", "properties": {"v": True}, "required": ["v"]}
    (tool,) = load_spec([{"name": "store", "description": "Store anything.", "parameters": schema}]).tools
    doc = bfcl_doc(tool, {"v": [1, 2]})
    assert doc["parameters"]["properties"]["v"] == {"type": "array", "description": "", "items": {"type": "integer"}}


@needs_corpus
def test_nexmo_voice_synthesizes_without_a_crash():
    run = synthesize(CORPUS / "nexmo.com__voice__1.3.10__openapi.yaml", n=60, seed=0)
    assert len(run.tasks) > 30
    assert not [r for r in run.dropped if "internal error" in r]


def test_an_unexpected_error_costs_one_attempt_and_is_logged_once(monkeypatch, caplog, tmp_path):
    spec = tmp_path / "rename.json"
    spec.write_text(json.dumps(rename_spec()))
    real = synth_run.BUILDERS["simple"]
    calls = {"n": 0}

    async def flaky(ctx, focus):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise IndexError("list index out of range")
        if calls["n"] == 3:
            raise Skip("unlucky draw")
        return await real(ctx, focus)

    monkeypatch.setitem(synth_run.BUILDERS, "simple", flaky)
    with caplog.at_level(logging.WARNING, logger="inftool_env.synth.run"):
        run = synthesize(spec, n=4, seed=0, categories=["simple"])
    assert len(run.tasks) == 4
    assert run.dropped["simple: internal error (IndexError: list index out of range)"] == 2
    assert run.dropped["simple: unlucky draw"] == 1
    logged = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None


def test_a_model_endpoint_that_is_down_still_stops_the_run(monkeypatch, tmp_path):
    # Every attempt would fail alike: counted drops would only hide it.
    from inftool_env.errors import PolicyError

    spec = tmp_path / "rename.json"
    spec.write_text(json.dumps(rename_spec()))

    async def down(ctx, focus):
        raise PolicyError("http://127.0.0.1:9/v1: ConnectError: refused")

    monkeypatch.setitem(synth_run.BUILDERS, "simple", down)
    with pytest.raises(PolicyError, match="ConnectError"):
        synthesize(spec, n=4, seed=0, categories=["simple"])


# 2. the action is always said, never as a route


def test_a_summary_that_is_only_a_markdown_link_says_the_link_text():
    tool = one_tool({"description": "[Get Several Tracks](https://developer.spotify.com/web-api/get-several-tracks/)",
                     "parameters": [{"name": "ids", "in": "query", "required": True, "schema": {"type": "string"}}]},
                    path="/tracks")  # fmt: skip
    assert ph.action(tool) == "get several tracks"
    link = one_tool({"description": "[Remove Tracks from a Playlist](https://example.org/remove)"}, path="/x")
    assert ph.action(link) == "remove tracks from a playlist"


@pytest.mark.parametrize(
    ("method", "summary", "said"),
    [
        ("get", "/businesses/{id}/reviews", "get the reviews of a business"),
        ("get", "/businesses/{id}", "get a business"),
        ("get", "/businesses/search/phone", "search businesses by phone"),
        ("post", "https://api.example.com/oauth2/token", "create an oauth token"),
        ("delete", "DELETE /v2/projects/{id}/build-cache", "delete the build cache of a project"),
    ],
)
def test_a_summary_that_is_a_route_is_said_from_its_method_and_nouns(method, summary, said):
    tool = one_tool({"summary": summary, "operationId": summary}, path="/v3/things/literal-slug", method=method)
    assert ph.action(tool) == said
    assert not ph.leaks(ph.clause(tool, {}, random.Random(0)), [tool])


def test_a_route_without_a_summary_is_said_from_the_http_path():
    tool = one_tool({}, path="/v1/members/{member_id}/loans")
    assert tool.description.startswith("GET /")  # what the compiler writes for a missing summary
    assert ph.action(tool) == "get the loans of a member"


def test_a_request_that_spells_the_tools_path_leaks():
    tool = one_tool({"summary": "/businesses/{id}/reviews"}, path="/v3/businesses/{id}/reviews")
    assert ph.leaks("Please /businesses/{id}/reviews now.", [tool]) == ["/businesses/{id}/reviews"]
    assert ph.leaks("Call GET /v3/businesses/{id}/reviews for me.", [tool]) == ["/v3/businesses/{id}/reviews"]
    assert ph.leaks("Get the reviews of a business.", [tool]) == []
    assert ph.leaks("use get_things_id", ["get_things_id"]) == ["get_things_id"]  # names alone still work


@needs_corpus
@pytest.mark.parametrize("spec", ["spotify.com__v1__swagger.yaml", "yelp-fusion__1.0__swagger.json"])
def test_every_corpus_tool_states_its_action_without_a_route(spec):
    world = open_world(CORPUS / spec)
    for _, tool in world.tools:
        said = ph.action(tool)
        assert said != "do it" and "/" not in said, (tool.original_name, said)


# 3. labels are words, one per parameter


@pytest.mark.parametrize("placeholder", ["XXXXXXXXX", "TODO", "string", "N/A", "---"])
def test_a_placeholder_description_is_not_a_label(placeholder):
    tool = one_tool({"summary": "Get a project.", "parameters": [path_param("user_name", placeholder)]},
                    path="/project/{user_name}")  # fmt: skip
    assert ph.label(tool, "user_name") == "user name"


def test_two_parameters_never_share_a_label():
    tool = one_tool({"summary": "Get a project.", "parameters": [path_param("username", "The identifier"),
                                                                 path_param("project", "The identifier")]},
                    path="/project/{username}/{project}")  # fmt: skip
    assert (ph.label(tool, "username"), ph.label(tool, "project")) == ("username", "project")
    said = ph.details(tool, {"username": "ada", "project": "atlas"}, random.Random(0))
    assert "username" in said and "project" in said and "identifier" not in said


def test_a_label_keeps_its_acronym():
    tool = one_tool({"summary": "Get a call.", "parameters": [path_param("uuid", "UUID of the call")]},
                    path="/calls/{uuid}")  # fmt: skip
    assert ph.label(tool, "uuid") == "UUID of the call"


@needs_corpus
def test_circleci_labels_are_words_and_distinct():
    world = open_world(CORPUS / "circleci.com__v1__openapi.yaml")
    for _, tool in world.tools:
        labels = [ph.label(tool, p) for p in tool.input_schema.get("properties", {})]
        assert len(set(labels)) == len(labels) and not [x for x in labels if "xxx" in x.lower()], labels


# 4. the action ends where the summary does


@pytest.mark.parametrize(
    ("description", "said"),
    [
        ("Retrieves audit events\n\nThis endpoint requires your JSON Web Token", "retrieve audit events"),
        ("Provides test metadata\nNote: [Learn how](https://example.org/)", "provide test metadata"),
        ("Returns the books\nof a member.", "return the books of a member"),
        ("Cancels the build, returns a summary of the build.", "cancel the build"),
    ],
)  # fmt: skip
def test_the_action_stops_at_the_summarys_end(description, said):
    assert ph.action(one_tool({"description": description})) == said


@pytest.mark.parametrize(
    ("description", "said"),
    [
        ("This method returns the orders of a customer. Request headers This method uses the X-Trace header to "
         "improve the accuracy of shipping and delivery time estimations.", "get the orders of a customer"),
        ("This method retrieves the details for an eBay event. The result set contains detailed information.",
         "retrieve the details for an eBay event"),
        ("This operation is used to add a private copy of an existing event to a calendar.",
         "add a private copy of an existing event to a calendar"),
        ("This endpoint allows you to create a webhook.", "create a webhook"),
        ("Request headers This method uses the X-Trace header. Lists the orders of a customer.",
         "list the orders of a customer"),
        ("This method supports patch semantics.\n\nRestrictions\n\nUpdates an event.", "update an event"),
    ],
)  # fmt: skip
def test_a_this_method_sentence_is_the_summary_and_a_section_title_is_not(description, said):
    # "This method returns …" was skipped as a preamble: the request became "Request headers uses the X-Trace …".
    assert ph.action(one_tool({"description": description})) == said


def test_a_long_action_ends_at_a_clause_or_a_word_never_mid_word():
    # It was cut at 160 characters: "…, start and end dates, and event ter".
    clause = (
        "The result set contains detailed information associated with the specified event ID, such as "
        "applicable coupons, start and end dates, and event terms, for every marketplace the seller serves"
    )
    said = ph.action(one_tool({"description": f"{clause}."}))
    assert said.endswith("event ID, such as applicable coupons, start and end dates"), said
    words = "Retrieve " + " ".join(["the very long list of every item"] * 8) + "."
    said = ph.action(one_tool({"description": words}))
    assert 150 <= len(said) <= 160 and words.lower().startswith(said.lower()) and words[len(said)] == " ", said


@needs_corpus
def test_ebay_actions_are_its_summaries():
    world = open_world(CORPUS / "ebay.com__buy-deal__v1.3.0__openapi.yaml")
    said = {tool.name: ph.action(tool) for _, tool in world.tools}
    assert said == {"getDealItems": "retrieve a paginated set of deal items",
                    "getEvents": "get paginated results containing all eBay events for the specified marketplace",
                    "getEvent": "retrieve the details for an eBay event",
                    "getEventItems": "get a paginated set of event items"}  # fmt: skip


@needs_corpus
def test_one_password_events_actions_stop_before_the_description():
    world = open_world(CORPUS / "1password.com__events__1.2.0__openapi.yaml")
    for _, tool in world.tools:
        assert "requires" not in ph.action(tool), ph.action(tool)


# 4. values a request can say


def test_a_media_type_header_gets_a_media_type_not_random_words():
    # (Tool arguments of these names: an OpenAPI 3 spec's Accept and Content-Type headers are ignored.)
    from inftool_env.synth.values import ValueMaker

    values = ValueMaker(random.Random(0))
    props = {"Accept": {"type": "string", "description": "It is used to set specified media type."},
             "Content_Type": {"type": "string"}}  # fmt: skip
    for name, schema in props.items():
        assert values.value(name, schema, description=schema.get("description", "")) == "application/json"


def test_a_list_of_ids_in_one_string_gets_ids():
    from inftool_env.synth.values import ValueMaker

    said = ValueMaker(random.Random(0)).value("ids", {"type": "string"}, description="A comma-separated list of IDs.")
    assert re.fullmatch(r"id-\d{3}(,id-\d{3}){1,2}", said), said


def test_a_media_type_that_means_a_photo_keeps_words():
    """Social APIs' "media type" is photo or video: only a header's name, or a MIME type, means a format."""
    from inftool_env.synth.values import ValueMaker

    said = ValueMaker(random.Random(0)).value("type", {"type": "string"}, description="The media type (photo or gif).")
    assert said != "application/json"
