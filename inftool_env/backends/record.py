"""A backend for function docs with no implementation: calls are validated, kept, and acknowledged.

BFCL's single-turn categories are judged on the calls themselves (their AST), never on what they
return, so the functions behind them do not exist. The server still validates every call against
its schema (the schema gate), and the state keeps the calls made, in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inftool_env.spec.ir import ToolSpec


class RecordingBackend:
    suspends = False  # call() never awaits

    def new_state(self, *, seed: int, initial: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return []

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], state: list[dict[str, Any]]) -> Any:
        state.append({"name": tool.original_name, "arguments": arguments})
        return {"status": "recorded", "note": f"{tool.original_name} has no implementation; the call is judged as made"}

    def snapshot(self, state: list[dict[str, Any]]) -> dict[str, Any]:
        return {"calls": list(state)}
