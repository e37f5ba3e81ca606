from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inftool_env.errors import RegistrationError
from inftool_env.parsing import FORMATS, ParsedCall, get_format

CALLS = [ParsedCall("get_weather", {"city": "Zürich", "days": 3}), ParsedCall("math.add", {"a": 1.5, "b": [1, 2]})]
TEXT_FORMATS = ["hermes", "llama3", "mistral", "bfcl"]


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_render_then_parse_round_trips(name):
    fmt = get_format(name)
    parsed = fmt.parse(fmt.render_calls(CALLS))
    assert parsed.ok, parsed.error
    assert [(c.name, c.arguments) for c in parsed.calls] == [(c.name, c.arguments) for c in CALLS]


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_plain_text_is_an_answer_not_an_error(name):
    parsed = get_format(name).parse("Das Wetter in Zürich ist sonnig ☀")
    assert parsed.ok and parsed.calls == () and parsed.content == "Das Wetter in Zürich ist sonnig ☀"


@pytest.mark.parametrize("name", TEXT_FORMATS)
def test_tools_are_rendered_into_the_prompt(name):
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    assert "get_weather" in get_format(name).render_tools([tool])


@pytest.mark.parametrize(
    "name, text, error",
    [
        ("hermes", "<tool_call>{not json}</tool_call>", "invalid JSON"),
        ("hermes", '<tool_call>{"name": "f"', "unclosed"),
        ("hermes", '<tool_call>{"arguments": {}}</tool_call>', "string 'name'"),
        ("llama3", '{"name": "f", "parameters": [1]}', "must be an object"),
        ("llama3", '{"name": "f", "parameters": {', "invalid JSON"),
        ("mistral", "[TOOL_CALLS][{", "invalid JSON"),
        ("bfcl", "[f(a=1), g(", "not a Python call list"),
        ("bfcl", "[f(a=__import__('os').system('true'))]", "literals"),
        ("bfcl", "[f(1)]", "keyword"),
        ("bfcl", "[1 + 2]", "not a call"),
        ("bfcl", "[f(**x)]", "kwargs"),
    ],
)
def test_malformed_output_is_a_format_error_not_an_exception(name, text, error):
    parsed = get_format(name).parse(text)
    assert not parsed.ok and error in parsed.error


def test_openai_structured_messages():
    fmt = get_format("openai")
    msg = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}],
    }
    parsed = fmt.parse_message(msg)
    assert parsed.calls == (ParsedCall("f", {"x": 1}, "c1"),)
    bad = fmt.parse_message({"tool_calls": [{"function": {"name": "f", "arguments": "{oops"}}]})
    assert not bad.ok and "not valid JSON" in bad.error


def test_hermes_json_in_a_fence_is_text_llama3_reads_it():
    fenced = '```json\n{"name": "f", "parameters": {"x": 1}}\n```'
    assert get_format("llama3").parse(fenced).calls == (ParsedCall("f", {"x": 1}),)


def test_unknown_format():
    with pytest.raises(RegistrationError, match="known: openai"):
        get_format("xml")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200), name=st.sampled_from(sorted(FORMATS)))
def test_no_text_makes_a_parser_raise(text, name):
    get_format(name).parse(text)
