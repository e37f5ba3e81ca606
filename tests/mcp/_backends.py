"""Backends for the hostile-input and fault tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from inftool_env import load_spec
from inftool_env.errors import ToolCallError
from inftool_env.spec.ir import ToolSpec

SLOW_PATTERN = "^(a|a)*$"  # backtracks exponentially in `re` on "aaaa…!"


class Echo:
    """A python: backend: tools that hand back what they are given, or text no transport can carry."""

    def echo(self, text: str) -> str:
        """Say it back."""
        return text

    def mojibake(self) -> dict[str, str]:
        """A result holding a lone surrogate (a latin-1 byte decoded with surrogateescape)."""
        return {"text": "caf\udce9"}


FAULTY_TOOLS = [
    {"name": "crash", "description": "A simulator bug.", "parameters": {"type": "object", "properties": {}}},
    {"name": "refuse", "description": "A refusal.", "parameters": {"type": "object", "properties": {}}},
    {
        "name": "nap",
        "description": "Sleep.",
        "parameters": {"type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"]},
    },
    {
        "name": "match",
        "description": "A pattern that backtracks.",
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "pattern": SLOW_PATTERN}},
            "required": ["code"],
        },
    },
    {
        "name": "store",
        "description": "Keep a value in the episode's state.",
        "parameters": {"type": "object", "properties": {"value": {"type": "string"}}, "required": ["value"]},
    },
]
FAULTY_SUITE = load_spec(FAULTY_TOOLS, name="faulty")


class Faulty:
    """A Backend (not a python: class) whose calls crash, refuse, sleep, or grow the state."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.finished = 0

    def new_state(self, *, seed: int, initial: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"values": list((initial or {}).get("values", []))}

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], state: dict[str, Any]) -> Any:
        if tool.name == "crash":
            raise KeyError("a bug in the simulator")
        if tool.name == "refuse":
            raise ToolCallError("No such thing.")
        if tool.name == "nap":
            self.started += 1
            try:
                await anyio.sleep(arguments["seconds"])
            except anyio.get_cancelled_exc_class():
                self.cancelled += 1
                raise
            self.finished += 1
            return "slept"
        if tool.name == "store":
            state["values"].append(arguments["value"])
            return {"stored": len(state["values"])}
        return {"ok": True}

    def snapshot(self, state: dict[str, Any]) -> dict[str, Any]:
        return state
