"""JSON-bodied formats: Hermes/Qwen2.5 ``<tool_call>`` tags, Llama 3.x bare JSON, Mistral ``[TOOL_CALLS]``."""

from __future__ import annotations

import json
from typing import Any

from inftool_env.parsing.base import (
    ParsedCall,
    ParseResult,
    call_from_json,
    decode_prefix,
    load_json,
    strip_code_fence,
    tools_json,
)

OPEN, CLOSE = "<tool_call>", "</tool_call>"


def _tagged(text: str) -> tuple[list[str], str, bool]:
    """The bodies of ``<tool_call>…</tool_call>`` pairs, the text outside them, and whether a tag was
    left open. One pass with ``str.find``: a lazy regex rescans to the end for every unclosed tag."""
    bodies, outside, at = [], [], 0
    while (start := text.find(OPEN, at)) != -1:
        end = text.find(CLOSE, start + len(OPEN))
        if end == -1:
            break
        outside.append(text[at:start])
        bodies.append(text[start + len(OPEN) : end].strip())
        at = end + len(CLOSE)
    outside.append(text[at:])
    return bodies, "".join(outside), OPEN in text[at:]


def _calls(objs: list[Any], where: str) -> tuple[ParsedCall, ...] | str:
    calls = []
    for i, obj in enumerate(objs):
        call = call_from_json(obj, f"{where} {i}")
        if isinstance(call, str):
            return call
        calls.append(call)
    return tuple(calls)


class HermesFormat:
    """Qwen2.5 / Hermes: tools in ``<tools>``, calls as ``<tool_call>{json}</tool_call>``."""

    name = "hermes"

    def render_tools(self, tools: list[dict[str, Any]]) -> str:
        return (
            "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
            f"{tools_json(tools)}\n</tools>\n\n"
            "For each function call, return a json object with function name and arguments within "
            '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, '
            '"arguments": <args-json-object>}\n</tool_call>'
        )

    def parse(self, text: str) -> ParseResult:
        bodies, outside, unclosed = _tagged(text)
        if not bodies:
            if unclosed:
                return ParseResult(content=text, error="unclosed <tool_call> tag")
            return ParseResult(content=text.strip())
        objs = []
        for i, body in enumerate(bodies):
            obj, why = load_json(body)
            if why is not None:
                return ParseResult(content=text, error=f"<tool_call> {i}: invalid JSON ({why})")
            objs.append(obj)
        calls = _calls(objs, "<tool_call>")
        if isinstance(calls, str):
            return ParseResult(content=text, error=calls)
        return ParseResult(content=outside.strip(), calls=calls)

    def render_calls(self, calls: list[ParsedCall]) -> str:
        return "\n".join(
            f"<tool_call>\n{json.dumps({'name': c.name, 'arguments': c.arguments}, ensure_ascii=False)}\n</tool_call>"
            for c in calls
        )


class Llama3Format:
    """Llama 3.x JSON tool calling: the turn *is* a JSON object (or list of them), nothing else."""

    name = "llama3"

    def render_tools(self, tools: list[dict[str, Any]]) -> str:
        return (
            "Given the following functions, please respond with a JSON for a function call with its proper "
            'arguments that best answers the given prompt.\n\nRespond in the format {"name": function name, '
            '"parameters": dictionary of argument name and its value}. Do not use variables.\n\n' + tools_json(tools)
        )

    def parse(self, text: str) -> ParseResult:
        body = text.strip().removeprefix("<|python_tag|>").strip()
        body = strip_code_fence(body)
        if not body.startswith(("{", "[")):
            return ParseResult(content=text.strip())
        obj, why = load_json(body)
        if why is not None:
            return ParseResult(content=text, error=f"invalid JSON tool call ({why})")
        calls = _calls(obj if isinstance(obj, list) else [obj], "call")
        if isinstance(calls, str):
            return ParseResult(content=text, error=calls)
        return ParseResult(calls=calls)

    def render_calls(self, calls: list[ParsedCall]) -> str:
        objs = [{"name": c.name, "parameters": c.arguments} for c in calls]
        return json.dumps(objs[0] if len(objs) == 1 else objs, ensure_ascii=False)


class MistralFormat:
    """Mistral: ``[AVAILABLE_TOOLS]…`` in the prompt, calls as ``[TOOL_CALLS][{…}, …]``."""

    name = "mistral"

    def render_tools(self, tools: list[dict[str, Any]]) -> str:
        return f"[AVAILABLE_TOOLS]{json.dumps(tools, ensure_ascii=False)}[/AVAILABLE_TOOLS]"

    def parse(self, text: str) -> ParseResult:
        if "[TOOL_CALLS]" not in text:
            return ParseResult(content=text.strip())
        before, _, body = text.partition("[TOOL_CALLS]")
        body = body.strip().removesuffix("</s>").strip()
        obj, why = decode_prefix(body)
        if why is not None:
            return ParseResult(content=text, error=f"[TOOL_CALLS]: invalid JSON ({why})")
        calls = _calls(obj if isinstance(obj, list) else [obj], "[TOOL_CALLS]")
        if isinstance(calls, str):
            return ParseResult(content=text, error=calls)
        return ParseResult(content=before.strip(), calls=calls)

    def render_calls(self, calls: list[ParsedCall]) -> str:
        objs = [{"name": c.name, "arguments": c.arguments} for c in calls]
        return "[TOOL_CALLS]" + json.dumps(objs, ensure_ascii=False)
