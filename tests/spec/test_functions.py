from __future__ import annotations

import json

import pytest

from inftool_env.errors import SpecError
from inftool_env.spec import load_spec, parse_text

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.mark.parametrize(
    "document",
    [
        WEATHER,
        [WEATHER],
        {"type": "function", "function": WEATHER},
        [{"type": "function", "function": WEATHER}],
        {"tools": [{"type": "function", "function": WEATHER}]},
    ],
    ids=["single", "list", "wrapped", "wrapped-list", "tools-key"],
)
def test_openai_shapes(document):
    suite = load_spec(document)
    assert suite.format == "functions"
    [tool] = suite.tools
    assert tool.name == "get_weather"
    assert tool.input_schema["required"] == ["city"]
    assert tool.openai_tool()["function"]["parameters"] == tool.input_schema


def test_bfcl_types_are_normalised_and_dotted_names_reversible():
    bfcl = {
        "name": "math.hypot",
        "description": "",
        "parameters": {
            "type": "dict",
            "properties": {
                "x": {"type": "float"},
                "pt": {"type": "tuple", "items": {"type": "integer"}},
                "opts": {"type": "dict", "properties": {"k": {"type": "any"}}},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["x"],
        },
    }
    [tool] = load_spec([bfcl]).tools
    assert (tool.name, tool.original_name) == ("math_hypot", "math.hypot")
    props = tool.input_schema["properties"]
    assert tool.input_schema["type"] == "object"
    assert props["x"] == {"type": "number"}
    assert props["pt"]["type"] == "array"
    assert props["opts"]["properties"]["k"] == {}


def test_java_and_javascript_type_names_become_strings_for_those_languages_only():
    fn = {"name": "f", "parameters": {"type": "dict", "properties": {"m": {"type": "HashMap"}}}}
    [tool] = load_spec([fn], language="java").tools
    assert tool.input_schema["properties"]["m"] == {"type": "string", "x-language-type": "HashMap"}
    suite = load_spec([fn])
    assert suite.tools == [] and "unknown type 'HashMap'" in suite.skipped[0].reason
    assert suite.skipped[0].pointer == "/0/parameters/properties/m/type"


def test_jsonl_function_docs(tmp_path):
    path = tmp_path / "docs.json"
    path.write_text("\n".join(json.dumps({**WEATHER, "name": n}) for n in ("a", "b", "c")))
    assert load_spec(path).tool_names == ["a", "b", "c"]


def test_a_bad_function_is_skipped_with_its_pointer():
    suite = load_spec([WEATHER, {"description": "no name"}, 3])
    assert suite.tool_names == ["get_weather"]
    assert [s.pointer for s in suite.skipped] == ["/1/name", "/2"]
    with pytest.raises(SpecError, match="/1/name"):
        load_spec([WEATHER, {"description": "no name"}], strict=True)


def test_unicode_descriptions_survive():
    fn = {**WEATHER, "description": "Météo — 天气 ☀"}
    assert load_spec(parse_text(json.dumps([fn]), source="x")).tools[0].description == "Météo — 天气 ☀"
