"""Tool-call formats: how tools are rendered into a prompt and how a model's text is parsed back.

Each format is a renderer *and* its parser, so a policy prompted in one format is read in the same
one. Malformed output is a ``ParseResult`` with ``error`` set — a format-gate failure recorded on the
trajectory — never an exception. That holds for hostile output too: parsing is linear in the text
(no backtracking regexes), and a call's arguments must be a JSON value no deeper than ``MAX_DEPTH``
(serialisers and validators downstream give up near 255 levels, or recurse) with finite numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

MAX_DEPTH = 64  # nesting of a call's arguments; real tools stay far below, hostile output does not


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


def load_json(text: str) -> tuple[Any, str | None]:
    """``json.loads`` that never raises: (value, None) or (None, why). Deep nesting (RecursionError)
    and over-long integers (ValueError, not JSONDecodeError) are errors like any other."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, exc.msg
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, _why(exc)


def decode_prefix(text: str) -> tuple[Any, str | None]:
    """The first JSON value at the start of ``text`` (what follows is ignored), never raising."""
    try:
        return json.JSONDecoder().raw_decode(text)[0], None
    except json.JSONDecodeError as exc:
        return None, exc.msg
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, _why(exc)


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def json_problem(value: Any, *, max_depth: int = MAX_DEPTH) -> str | None:
    """Why ``value`` cannot be a call's JSON arguments (too deep, NaN/Infinity, a key that is not a
    string, a value JSON has no type for), or None. Iterative: any depth is safe to ask about."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        node, where, depth = stack.pop()
        at = f" at '{where}'" if where else ""
        if isinstance(node, dict | list | tuple):
            if depth > max_depth:
                return f"arguments nested deeper than {max_depth} levels"
            if isinstance(node, dict):
                for key, item in node.items():
                    if not isinstance(key, str):
                        return f"a key{at} is {type(key).__name__}, not a string"
                    stack.append((item, f"{where}.{key}" if where else key, depth + 1))
            else:
                stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(node))
        elif isinstance(node, float) and not math.isfinite(node):
            return f"the number{at} is {node}, which JSON cannot carry"
        elif node is not None and not isinstance(node, str | int | float | bool):
            return f"the value{at} is a {type(node).__name__}, not a JSON value"
    return None


def call_from_json(obj: Any, where: str) -> ParsedCall | str:
    """``{"name": …, "arguments": {…}}`` (arguments may be a JSON string, or named ``parameters``)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return f"{where}: expected an object with a string 'name'"
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        args, why = load_json(args) if args.strip() else ({}, None)
        if why is not None:
            return f"{where}: arguments are not valid JSON ({why})"
    if not isinstance(args, dict):
        return f"{where}: arguments must be an object"
    problem = json_problem(args)
    if problem is not None:
        return f"{where}: {problem}"
    return ParsedCall(obj["name"], args, obj.get("id") if isinstance(obj.get("id"), str) else None)


MAX_CALL_SCANS = 16  # '{' positions call_in_text tries: a text of many braces costs a bounded number of decodes


def call_in_text(text: str) -> bool:
    """Whether prose holds a call the format did not take for one: a reply shaped like a call that makes
    none. A ``<tool_call>`` tag left in the text (a local model's call its parser could not read, e.g. XML
    inside the tags), or JSON ``{"name": …, "arguments": …}`` in a code fence or bare."""
    if "<tool_call>" in text:
        return True
    if '"name"' not in text or ('"arguments"' not in text and '"parameters"' not in text):
        return False
    at = 0
    for _ in range(MAX_CALL_SCANS):
        start = text.find("{", at)
        if start == -1:
            return False
        value, why = decode_prefix(text[start:])
        if why is None and isinstance(value, dict) and isinstance(value.get("name"), str):
            if isinstance(value.get("arguments", value.get("parameters")), dict | str):
                return True
        at = start + 1
    return False


def strip_code_fence(text: str) -> str:
    """The body of a whole-text ```json fence (models often wrap JSON in one); other text as is.
    String operations, not a regex: a lazy group before ``\\s*```$`` backtracks quadratically."""
    if len(text) < 6 or not (text.startswith("```") and text.endswith("```")):
        return text
    return text[3:-3].removeprefix("json").strip()
