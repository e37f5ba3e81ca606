"""A scripted model for the trainer-adapter tests, a pure function of the conversation (so concurrent
episodes cannot reorder it): right on two Bookshelf tasks, wrong on one, silent on the rest."""

from __future__ import annotations

import json
from typing import Any


def _call(tool: str, **arguments: Any) -> dict[str, Any]:
    call = {"id": f"call_{tool}", "type": "function", "function": {"name": tool, "arguments": json.dumps(arguments)}}
    return {"role": "assistant", "content": "", "tool_calls": [call]}


def bookshelf_model(messages: list[dict[str, Any]], tools: Any = None) -> str | dict[str, Any]:
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    opening = str(messages[users[0]].get("content"))
    answered = sum(1 for m in messages[users[-1] + 1 :] if m.get("role") == "assistant")
    if "Register me" in opening:  # multi-turn: right on both user turns
        if answered:
            return "Done."
        if len(users) == 1:
            return _call("registerMember", name="Ada Lovelace", email="ada@example.com")
        return _call("borrowBook", memberId="mem_7", bookId="boo_2", due="2025-03-01")
    if "Dune" in opening:  # wrong: three copies where two were asked for
        return "Added." if answered else _call("addBook", title="Dune", author="Frank Herbert", genre="fiction",
                                                copies=3)  # fmt: skip
    if "lost" in opening:  # right
        return "Removed." if answered else _call("removeBook", bookId="boo_1")
    return "Sorry, I cannot help with that."
