from __future__ import annotations

import json
import re

import pytest
import yaml
from jsonschema import Draft202012Validator

from inftool_env.errors import SpecError
from inftool_env.spec import load_spec
from inftool_env.spec.naming import sanitize_tool_name
from inftool_env.spec.openapi import HTTP_METHODS
from tests.conftest import BOOKSHELF, corpus_dir

NAME_RULE = r"^[A-Za-z0-9_-]{1,64}$"


def count_operations(path) -> int:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return sum(1 for item in doc["paths"].values() for m in HTTP_METHODS if m in item)


def test_every_corpus_operation_is_a_tool_or_a_reported_skip(corpus_spec):
    suite = load_spec(corpus_spec)
    assert len(suite.tools) + len(suite.skipped) == count_operations(corpus_spec)
    assert len(suite.tools) > 0
    names = [t.name for t in suite.tools]
    assert len({n.lower() for n in names}) == len(names)
    for tool in suite.tools:
        assert re.match(NAME_RULE, tool.name), tool.name
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["type"] == "object"
        assert "$ref" not in json.dumps(tool.input_schema).replace('"$ref": "#/$defs/', "")
        if tool.output_schema is not None:
            Draft202012Validator.check_schema(tool.output_schema)
            assert tool.output_schema["type"] == "object"
        json.dumps(tool.model_dump())  # everything crosses process boundaries as JSON


def corpus(name: str):
    path = corpus_dir() / name
    if not path.exists():
        pytest.skip(f"corpus file {name} not present")
    return load_spec(path)


def test_operation_ids_that_are_urls_or_paths_are_sanitised_and_kept():
    suite = corpus("yelp-fusion__1.0__swagger.json")
    token = next(t for t in suite.tools if t.original_name == "https://api.yelp.com/oauth2/token")
    assert token.name == "https_api_yelp_com_oauth2_token"
    assert {t.original_name for t in suite.tools} >= {"/businesses/search", "/businesses/{id}"}


def test_missing_operation_ids_become_method_and_path_names():
    suite = corpus("spotify.com__v1__swagger.yaml")
    assert "get_albums_by_id_tracks" in suite.tool_names
    tool = suite.tool("get_albums_by_id_tracks")
    assert tool.original_name == "GET /albums/{id}/tracks"
    assert tool.annotations.read_only is True


def test_dotted_operation_ids_and_path_level_refs():
    suite = corpus("googleapis.com__calendar__v3__openapi.yaml")
    tool = suite.tool("calendar_events_insert")
    assert tool.original_name == "calendar.events.insert"
    props = tool.input_schema["properties"]
    # path-level $ref parameters, the path param, and the flattened Event body all land in one schema
    assert {"alt", "calendarId", "summary", "attendees", "start"} <= set(props)
    assert tool.bindings["calendarId"].location == "path"
    assert tool.bindings["summary"].location == "body"
    assert tool.input_schema["required"] == ["calendarId"]
    assert tool.security == ["Oauth2+Oauth2c"]  # recorded, never required of the caller
    assert tool.annotations.destructive is False


def test_header_params_and_dotted_property_names_get_python_names_with_bindings():
    suite = corpus("ably.io__platform__1.1.0__openapi.yaml")
    tool = suite.tool("getMetadataOfAllChannels")
    assert tool.bindings["X_Ably_Version"].name == "X-Ably-Version"
    assert tool.bindings["X_Ably_Version"].location == "header"


def test_one_of_bodies_are_kept_under_body():
    suite = corpus("nexmo.com__voice__1.3.10__openapi.yaml")
    tool = suite.tool("updateCall")
    body = tool.input_schema["properties"]["body"]
    assert len(body["oneOf"]) == 7
    assert tool.bindings["body"].name == ""


def test_a_one_of_no_value_could_meet_becomes_any_of():
    # 1Password's events body: "a cursor, or a time range", each shape taking any object. Under oneOf every
    # intended body fits both shapes and is refused: the server refused all calls, synthesis made 3 tasks.
    def spec(cursor: dict, reset: dict) -> dict:
        body = {"oneOf": [cursor, reset]}
        return {"openapi": "3.0.0", "info": {"title": "Events", "version": "1"}, "paths": {"/events": {"post": {
            "operationId": "getEvents", "requestBody": {"content": {"application/json": {"schema": body}}},
            "responses": {"200": {"description": "ok"}}}}}}  # fmt: skip

    cursor = {"description": "Cursor", "properties": {"cursor": {"type": "string"}}}
    reset = {"description": "Reset", "properties": {"limit": {"type": "number"}, "start_time": {"type": "string"}}}
    schema = load_spec(spec(cursor, reset)).tool("getEvents").input_schema
    body = schema["properties"]["body"]
    assert "oneOf" not in body and len(body["anyOf"]) == 2
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"body": {"cursor": "abc"}}) and validator.is_valid({"body": {"limit": 10}})
    # Shapes that can be told apart keep "exactly one".
    told = {**reset, "required": ["limit"]}
    assert "oneOf" in load_spec(spec({**cursor, "required": ["cursor"]}, told)).tool("getEvents").input_schema[
        "properties"]["body"]  # fmt: skip


def test_nullable_becomes_a_null_type():
    suite = corpus("circleci.com__v1__openapi.yaml")
    text = json.dumps([t.output_schema for t in suite.tools])
    assert '"null"]' in text and "nullable" not in text


def test_ecma_only_patterns_are_kept_out_of_the_python_validator():
    suite = corpus("amadeus.com__amadeus-hotel-booking__1.1.3__swagger.yaml")
    text = json.dumps(suite.tools[0].input_schema)
    assert "x-ecma-pattern" in text and "\\\\p{" in text


def doc(paths, components=None, version="3.0.3"):
    d = {"openapi": version, "info": {"title": "T", "version": "1"}, "paths": paths}
    if components:
        d["components"] = {"schemas": components}
    return d


def test_ref_cycles_become_defs_and_terminate():
    node = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
        },
    }
    spec = doc(
        {
            "/n": {
                "post": {
                    "operationId": "addNode",
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}},
                }
            }
        },
        {"Node": node},
    )
    tool = load_spec(spec).tool("addNode")
    schema = tool.input_schema
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/components_schemas_Node"}
    assert "components_schemas_Node" in schema["$defs"]
    v = Draft202012Validator(schema)
    assert v.is_valid({"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]})
    assert not v.is_valid({"name": "a", "children": [{"name": 3}]})


def test_all_of_is_merged_and_read_only_dropped_from_inputs():
    suite = load_spec(BOOKSHELF)
    book = suite.tool("getBook").output_schema
    assert "allOf" not in json.dumps(book)
    assert set(book["properties"]) == {"title", "author", "genre", "year", "copies", "id"}
    assert set(book["required"]) == {"title", "author", "id"}


def test_param_name_collisions_are_disambiguated():
    spec = doc(
        {
            "/x/{id}": {
                "put": {
                    "operationId": "put",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "id", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"id": {"type": "string"}, "v": {"type": "number"}},
                                }
                            }
                        }
                    },
                }
            }
        }
    )
    tool = load_spec(spec).tool("put")
    assert set(tool.input_schema["properties"]) == {"id", "id_query", "body"}
    assert tool.bindings["id_query"].location == "query"
    assert tool.bindings["body"].location == "body"  # the body was not flattened: its 'id' collides


def test_swagger_form_data_and_file_params():
    spec = {
        "swagger": "2.0",
        "info": {"title": "T", "version": "1"},
        "paths": {
            "/up": {
                "post": {
                    "operationId": "upload",
                    "consumes": ["multipart/form-data"],
                    "parameters": [
                        {"name": "file", "in": "formData", "type": "file", "required": True},
                        {"name": "note", "in": "formData", "type": "string"},
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    tool = load_spec(spec).tool("upload")
    assert tool.input_schema["properties"]["file"] == {"type": "string", "format": "binary"}
    assert tool.input_schema["required"] == ["file"]
    assert tool.http.body_media_type == "multipart/form-data"


def test_openapi_31_type_lists_and_boolean_exclusive_bounds_in_30():
    spec31 = doc(
        {
            "/a": {
                "get": {
                    "operationId": "a",
                    "parameters": [{"name": "q", "in": "query", "schema": {"type": ["string", "null"]}}],
                }
            }
        },
        version="3.1.0",
    )
    assert load_spec(spec31).tool("a").input_schema["properties"]["q"]["type"] == ["string", "null"]
    spec30 = doc(
        {
            "/a": {
                "get": {
                    "operationId": "a",
                    "parameters": [
                        {
                            "name": "n",
                            "in": "query",
                            "schema": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                        }
                    ],
                }
            }
        }
    )
    assert load_spec(spec30).tool("a").input_schema["properties"]["n"] == {"type": "number", "exclusiveMinimum": 0}


def test_one_bad_operation_is_skipped_and_reported_strict_raises():
    spec = doc(
        {
            "/ok": {"get": {"operationId": "ok"}},
            "/bad": {"get": {"operationId": "bad", "parameters": [{"$ref": "#/components/parameters/Nope"}]}},
        }
    )
    suite = load_spec(spec)
    assert suite.tool_names == ["ok"]
    [skip] = suite.skipped
    assert skip.name == "GET /bad" and "does not resolve" in skip.reason
    assert skip.pointer == "/paths/~1bad/get/parameters/0"
    with pytest.raises(SpecError, match=r"#/paths/~1bad/get/parameters/0: \$ref '#/components/parameters/Nope'"):
        load_spec(spec, strict=True)


def test_sanitize_long_names_stay_unique():
    a, b = "x" * 100 + "a", "x" * 100 + "b"
    assert sanitize_tool_name(a) != sanitize_tool_name(b)
    assert len(sanitize_tool_name(a)) == 64


def test_an_undeclared_path_parameter_skips_the_operation_strict_raises():
    """A tool for /pets/{petId} with no petId argument can never say which pet: the simulator was told 'None'."""
    path_level = [{"name": "petId", "in": "path", "required": True, "schema": {"type": "string"}}]
    spec = doc(
        {
            "/pets/{petId}": {"parameters": path_level, "get": {"operationId": "getPet"}, "delete": {}},
            "/owners/{ownerId}": {"get": {"operationId": "getOwner"}},
            "/orders/{orderId}": {"get": {"operationId": "getOrder", "parameters": [
                {"name": "orderID", "in": "path", "required": True, "schema": {"type": "string"}}]}},
        }
    )  # fmt: skip
    suite = load_spec(spec)
    assert suite.tool_names == ["getPet", "delete_pets_by_petId"]  # declared on the path item counts
    assert suite.tool("getPet").bindings["petId"].location == "path"
    assert [(s.name, s.pointer) for s in suite.skipped] == [
        ("GET /owners/{ownerId}", "/paths/~1owners~1{ownerId}/get"),
        ("GET /orders/{orderId}", "/paths/~1orders~1{orderId}/get"),
    ]
    assert "path parameter {ownerId} is not declared" in suite.skipped[0].reason
    assert "'orderID' is, and names are case-sensitive" in suite.skipped[1].reason
    with pytest.raises(SpecError, match=r"#/paths/~1owners~1\{ownerId\}/get: path parameter \{ownerId\}"):
        load_spec(spec, strict=True)


def test_a_path_parameter_the_path_lacks_is_left_out_with_a_warning():
    params = [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "stray", "in": "path", "required": True, "schema": {"type": "string"}},
    ]
    spec = doc({"/things/{id}": {"get": {"operationId": "getThing", "parameters": params}}})
    suite = load_spec(spec)
    assert suite.tool("getThing").input_schema["required"] == ["id"]
    [warning] = suite.warnings
    assert warning.name == "GET /things/{id}" and warning.pointer == "/paths/~1things~1{id}/get/parameters/1"
    assert warning.message == "path parameter 'stray' is not in the path /things/{id}; it is left out of the tool"
    with pytest.raises(SpecError, match=r"parameters/1: path parameter 'stray' is not in the path"):
        load_spec(spec, strict=True)


def test_a_duplicate_operation_id_is_renamed_with_a_warning_strict_raises():
    spec = doc({"/a": {"get": {"operationId": "fetch"}}, "/b": {"get": {"operationId": "fetch"}}})
    suite = load_spec(spec)
    assert suite.tool_names == ["fetch", "fetch_2"]
    [warning] = suite.warnings
    assert (warning.name, warning.pointer) == ("GET /b", "/paths/~1b/get/operationId")
    assert warning.message == "operationId 'fetch' is used twice (first by GET /a); this tool is named 'fetch_2'"
    with pytest.raises(SpecError, match=r"#/paths/~1b/get/operationId: operationId 'fetch' is used twice"):
        load_spec(spec, strict=True)


def test_a_skipped_operation_holds_no_name():
    bad = {"operationId": "fetch", "parameters": [{"$ref": "#/components/parameters/Nope"}]}
    suite = load_spec(doc({"/a": {"get": bad}, "/b": {"get": {"operationId": "fetch"}}}))
    assert suite.tool_names == ["fetch"] and suite.warnings == []


@pytest.mark.parametrize("name", ["Accept", "Content-Type", "authorization"])
def test_openapi_3_ignores_media_type_and_authorization_headers_swagger_2_keeps_them(name):
    """OpenAPI 3: "If in is header and the name is Accept, Content-Type or Authorization, the parameter
    definition SHALL be ignored" (CircleCI's ssh-key tool required a Content_Type). Swagger 2.0 has no such rule."""
    header = {"name": name, "in": "header", "required": True}
    spec3 = doc({"/a": {"post": {"operationId": "a", "parameters": [{**header, "schema": {"type": "string"}}]}}})
    tool = load_spec(spec3).tool("a")
    assert tool.input_schema["properties"] == {} and tool.bindings == {}
    spec2 = {"swagger": "2.0", "info": {"title": "T", "version": "1"},
             "paths": {"/a": {"post": {"operationId": "a", "parameters": [{**header, "type": "string"}]}}}}  # fmt: skip
    assert load_spec(spec2).tool("a").bindings[name.replace("-", "_")].name == name
