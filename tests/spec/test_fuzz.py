"""Fuzzed with hypothesis: any spec text or shape gives a ToolSuite or a SpecError, any tool arguments
a CallToolResult (and any client call a ToolOutcome), never another exception."""

from __future__ import annotations

import json

import anyio
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from inftool_env import compile_spec
from inftool_env.errors import SpecError
from inftool_env.mcp import open_client
from inftool_env.spec import compile_document, parse_text
from inftool_env.spec.ir import ToolSuite
from tests.conftest import BOOKSHELF

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
keys = st.sampled_from(
    ["openapi", "swagger", "paths", "components", "schemas", "get", "post", "operationId", "parameters", "name",
     "in", "schema", "type", "properties", "items", "$ref", "enum", "default", "pattern", "required"]
) | st.text(max_size=6)  # fmt: skip
leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
trees = st.recursive(
    leaves, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=5), max_leaves=25
)


def suite_or_spec_error(run) -> None:
    try:
        suite = run()
    except SpecError as err:
        assert err.source == "fuzz"
        return
    assert isinstance(suite, ToolSuite)
    json.dumps(suite.model_dump())


@FUZZ
@given(text=st.text(max_size=300))
def test_any_text_is_a_suite_or_a_spec_error(text):
    suite_or_spec_error(lambda: compile_document(parse_text(text, source="fuzz"), source="fuzz"))


@FUZZ
@given(tree=trees, shared=trees, places=st.lists(st.sampled_from(["default", "enum", "examples", "x"]), max_size=4),
       cut=st.floats(0.1, 1.0), style=st.sampled_from(["yaml", "json"]))  # fmt: skip
def test_any_document_written_out_is_a_suite_or_a_spec_error(tree, shared, places, cut, style):
    """OpenAPI-shaped documents (a shared node written once, then as YAML aliases), cut anywhere."""
    schema = {"type": "object", "properties": {"p": {"type": "string", **dict.fromkeys(places, shared)}}}
    doc = {"openapi": "3.0.0", "info": {"title": "f"}, "x-any": tree, "x-again": shared,
           "paths": {"/a": {"post": {"operationId": "a", "requestBody": {"content": {
               "application/json": {"schema": schema}}}}}}}  # fmt: skip
    text = yaml.safe_dump(doc) if style == "yaml" else json.dumps(doc)
    text = text[: max(1, int(len(text) * cut))]
    suite_or_spec_error(lambda: compile_document(parse_text(text, source="fuzz"), source="fuzz"))


# -- the tool-argument path ------------------------------------------------------------------------
any_text = st.text(st.characters(exclude_categories=()) | st.characters(categories=["Cs"]), max_size=12)  # surrogates
any_leaf = (
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True) | any_text | st.binary(max_size=4)
)  # fmt: skip
any_value = st.recursive(
    any_leaf,
    lambda kids: st.lists(kids, max_size=4) | st.tuples(kids) | st.frozensets(st.integers(), max_size=2)
    | st.dictionaries(any_text | st.sampled_from(["title", "author", "year"]), kids, max_size=4)
    | st.dictionaries(st.integers(), kids, max_size=2),
    max_leaves=40,
)  # fmt: skip
deep = st.integers(1, 400).map(lambda n: {"title": _nest(n), "author": "x"})
tool_names = st.sampled_from(["addBook", "getBook", "listBooks", "echo", "mojibake"]) | any_text
COMPILED = compile_spec(BOOKSHELF)
ECHO = compile_spec("python:tests.mcp._backends:Echo")  # hands its arguments back: surrogates reach results


def _nest(n: int) -> object:
    value: object = "x"
    for _ in range(n):
        value = {"a": value} if n % 2 else [value]
    return value


@FUZZ
@given(name=tool_names, arguments=any_value | deep | st.fixed_dictionaries({"text": any_text}))
@example(name="echo", arguments={"text": "caf\udce9"})  # the result would carry a lone surrogate
@example(name="addBook", arguments={"title": _nest(300), "author": "x"})
def test_any_arguments_are_a_result_on_the_server(name, arguments):
    async def go() -> None:
        for server in (COMPILED, ECHO):
            result = await server.call(name, arguments, server.episode_state("fuzz"))
            result.model_dump_json()  # whatever it says, it can be sent

    anyio.run(go)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=st.lists(st.tuples(tool_names, any_value | deep), min_size=1, max_size=5))
@example(calls=[("addBook", {"title": "\ud800", "author": "x"}), ("addBook", ["not", "an", "object"])])
def test_any_arguments_are_an_outcome_on_the_client_and_the_connection_lives(calls):
    async def go() -> None:
        async with open_client(COMPILED, episode="fuzz-client") as client:
            for name, arguments in calls:
                outcome = await client.call(name, arguments)
                assert not outcome.is_error or outcome.error_kind is not None
            assert not (await client.call("listBooks", {"limit": 1})).is_error

    anyio.run(go)
