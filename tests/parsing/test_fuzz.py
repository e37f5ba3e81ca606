"""Hostile model output into every parser: deep nesting, huge strings, lone surrogates, NaN, non-JSON,
unterminated tags, a megabyte of text. Each gives a ParseResult (calls, text, or an error), in time
linear in the text, and never raises. The pathological inputs that used to take quadratic time carry
a pytest timeout, so a regression fails instead of hanging."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inftool_env.parsing import FORMATS, ParseResult, get_format
from inftool_env.parsing.base import MAX_DEPTH, json_problem
from inftool_env.parsing.openai import OpenAIFormat

NAMES = sorted(FORMATS)
SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
WRAPS = [
    "{}",
    "<tool_call>{}</tool_call>",
    "<tool_call>{}",
    "[TOOL_CALLS]{}",
    "```json\n{}\n```",
    "<|python_tag|>{}",
    "[f(a={})]",
    '{{"name": "f", "arguments": {}}}',
    '<tool_call>{{"name": "f", "arguments": {}}}</tool_call>',
    '[TOOL_CALLS][{{"name": "f", "arguments": {}}}]',
]


def nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "1" + "]" * depth
    return '{"a": ' * depth + "1" + "}" * depth


PAYLOADS = st.one_of(
    st.text(max_size=300),
    st.text(st.one_of(SURROGATES, st.characters()), max_size=50),
    st.builds(nested, st.integers(1, 3000), st.sampled_from(["list", "dict"])),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "1" * 5000, '"\\ud800"', "{1, 2}", "b'x'", "1j",
                     "...", "__import__('os')", "\x00", '{"a": 1', "</tool_call>", "[TOOL_CALLS]"]),
)  # fmt: skip


def check(result: object) -> None:
    assert isinstance(result, ParseResult)
    if result.error is None:
        for call in result.calls:
            assert isinstance(call.name, str) and isinstance(call.arguments, dict)
            assert json_problem(call.arguments) is None  # what reaches a server is plain, bounded JSON


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), wrap=st.sampled_from(WRAPS), payload=PAYLOADS)
def test_wrapped_hostile_payloads_parse_or_fail_cleanly(name, wrap, payload):
    check(get_format(name).parse(wrap.replace("{}", payload, 1)))


@settings(max_examples=100, deadline=None)
@given(
    arguments=st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(st.one_of(SURROGATES, st.characters()), max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=20,
    ),
    as_text=st.booleans(),
)
def test_structured_tool_calls_of_any_shape(arguments, as_text):
    if as_text:
        try:
            arguments = json.dumps(arguments)
        except (ValueError, RecursionError):
            return
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"function": {"name": "f", "arguments": arguments}}],
    }
    parsed = OpenAIFormat().parse_message(message)
    check(parsed)
    if not isinstance(arguments, dict | str) or (isinstance(arguments, dict) and json_problem(arguments)):
        assert parsed.error is not None


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>" * 100_000,  # every unclosed tag used to rescan to the end: quadratic
        "```" + " " * 1_000_000 + "x",  # a lazy group before \s*``` backtracks over the spaces
        "```" + " " * 1_000_000 + "```",
        "x" * 1_000_000,
        "[" * 1_000_000,
        '{"name": "f", "arguments": ' + "[" * 200_000,
        "[TOOL_CALLS]" + "[" * 500_000,
        "<tool_call>" + '{"a":' * 100_000 + "</tool_call>",
        "[f(a=" + "[" * 100_000 + ")]",
    ],
    ids=["open-tags", "fence-spaces", "fence-spaces-closed", "1MB", "brackets", "deep-args", "mistral-deep",
         "hermes-deep", "bfcl-deep"],
)  # fmt: skip
def test_a_megabyte_of_hostile_text_is_handled_in_linear_time(name, text):
    check(get_format(name).parse(text))


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("hermes", '<tool_call>{"name": "f", "arguments": {"x": NaN}}</tool_call>', "JSON cannot carry"),
        ("llama3", '{"name": "f", "parameters": {"x": -Infinity}}', "JSON cannot carry"),
        ("mistral", '[TOOL_CALLS][{"name": "f", "arguments": {"x": 1e999}}]', "JSON cannot carry"),
        ("bfcl", "[f(x=1e999)]", "JSON cannot carry"),
        ("bfcl", "[f(x={1, 2})]", "a set, not a JSON value"),
        ("bfcl", "[f(x=b'raw')]", "a bytes, not a JSON value"),
        ("bfcl", "[f(x={1: 2})]", "not a string"),
        ("hermes", "<tool_call>" + nested(MAX_DEPTH + 1, "dict").join(['{"name": "f", "arguments": ', "}"])
         + "</tool_call>", f"nested deeper than {MAX_DEPTH}"),
        ("hermes", "<tool_call>" + nested(100_000, "list") + "</tool_call>", "nested too deeply"),
        ("llama3", '{"name": "f", "parameters": {"n": ' + "1" * 5000 + "}}", "invalid JSON"),
    ],
)  # fmt: skip
def test_values_json_cannot_carry_are_format_errors(name, text, error):
    parsed = get_format(name).parse(text)
    assert parsed.error is not None and error in parsed.error, parsed.error


def test_arguments_at_the_depth_limit_still_parse():
    args = json.loads(nested(MAX_DEPTH - 1, "dict"))
    parsed = get_format("hermes").parse(f"<tool_call>{json.dumps({'name': 'f', 'arguments': args})}</tool_call>")
    assert parsed.ok and parsed.calls[0].arguments == args


def test_lone_surrogates_parse_as_text():
    parsed = get_format("hermes").parse('<tool_call>{"name": "f", "arguments": {"t": "\\ud800"}}</tool_call> \ud800')
    assert parsed.ok and parsed.calls[0].arguments == {"t": "\ud800"} and parsed.content == "\ud800"
    assert math.isnan(json.loads("NaN"))  # what json.loads lets through, and the parsers must refuse
