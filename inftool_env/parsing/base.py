"""Tool-call formats: how tools are rendered into a prompt and how a model's text is parsed back.

Each format is a renderer *and* its parser, so a policy prompted in one format is read in the same
one. Malformed output is a ``ParseResult`` with ``error`` set — a format-gate failure recorded on the
trajectory — never an exception.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass(frozen=True)
class ParseResult:
    """What one assistant turn said: free text, tool calls, or a format error."""

    content: str = ""
    calls: tuple[ParsedCall, ...] = field(default_factory=tuple)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ToolCallFormat(Protocol):
    name: str

    def render_tools(self, tools: list[dict[str, Any]]) -> str:
        """System-prompt text that offers ``tools`` (OpenAI tool dicts) in this format."""
        ...

    def parse(self, text: str) -> ParseResult:
        """Read one assistant turn."""
        ...

    def render_calls(self, calls: list[ParsedCall]) -> str:
        """The text a model would write for ``calls`` (for oracles, and round-trip tests)."""
        ...


def tools_json(tools: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)


def call_from_json(obj: Any, where: str) -> ParsedCall | str:
    """``{"name": …, "arguments": {…}}`` (arguments may be a JSON string, or named ``parameters``)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return f"{where}: expected an object with a string 'name'"
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            return f"{where}: arguments are not valid JSON ({exc.msg})"
    if not isinstance(args, dict):
        return f"{where}: arguments must be an object"
    return ParsedCall(obj["name"], args, obj.get("id") if isinstance(obj.get("id"), str) else None)


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def strip_code_fence(text: str) -> str:
    """The body of a whole-text ```json fence (models often wrap JSON in one); other text as is."""
    fenced = _FENCE.match(text)
    return fenced.group(1) if fenced else text
