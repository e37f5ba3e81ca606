"""OpenAI structured ``tool_calls``: the action is a message dict, not text to parse."""

from __future__ import annotations

import json
from typing import Any

from inftool_env.parsing.base import ParsedCall, ParseResult, call_from_json


class OpenAIFormat:
    """Tools go in the API's ``tools=`` field; text turns have no calls in them."""

    name = "openai"

    def render_tools(self, tools: list[dict[str, Any]]) -> str:
        return ""  # the endpoint receives tools natively

    def parse(self, text: str) -> ParseResult:
        return ParseResult(content=text.strip())

    def parse_message(self, message: dict[str, Any]) -> ParseResult:
        content = message.get("content") or ""
        if not isinstance(content, str):
            return ParseResult(error="'content' must be a string or null")
        raw = message.get("tool_calls") or []
        if not isinstance(raw, list):
            return ParseResult(content=content, error="'tool_calls' must be a list")
        calls = []
        for i, item in enumerate(raw):
            fn = item.get("function", item) if isinstance(item, dict) else item
            call = call_from_json(fn, f"tool_calls[{i}]")
            if isinstance(call, str):
                return ParseResult(content=content, error=call)
            item_id = item.get("id") if isinstance(item, dict) else None
            calls.append(ParsedCall(call.name, call.arguments, item_id if isinstance(item_id, str) else None))
        return ParseResult(content=content, calls=tuple(calls))

    def render_calls(self, calls: list[ParsedCall]) -> str:
        return json.dumps(
            [{"type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}} for c in calls]
        )
