"""The oracle: plays a task's ground truth (for contract tests, and as the ceiling in evaluations)."""

from __future__ import annotations

from typing import Any

from inftool_env.tasks import Task, ToolCall


class OraclePolicy:
    """At each user turn, issues that turn's ground-truth calls in one assistant turn, then answers."""

    def __init__(self, task: Task, *, answer: str = "Done.") -> None:
        self.task = task
        self.answer = answer

    async def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        messages = observation["messages"]
        turn = sum(1 for m in messages if m["role"] == "user") - 1
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        acted = any(m["role"] == "assistant" and m.get("tool_calls") for m in messages[last_user:])
        calls = self.task.ground_truth[turn] if 0 <= turn < len(self.task.ground_truth) else []
        if calls and not acted:
            return calls_message(calls, turn)
        return {"role": "assistant", "content": self.answer}


def calls_message(calls: list[ToolCall], turn: int) -> dict[str, Any]:
    """One assistant message making all of a turn's ground-truth calls."""
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": f"gt_{turn}_{i}", "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for i, c in enumerate(calls)
        ],
    }
