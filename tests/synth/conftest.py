from __future__ import annotations

from typing import Any

import pytest

from inftool_env.synth import SynthRun, synthesize
from tests.conftest import REPO

BOOKSHELF_ID = "inftool/Bookshelf-v0"


@pytest.fixture(scope="module")
def bookshelf_run() -> SynthRun:
    return synthesize(BOOKSHELF_ID, n=48, seed=7)


class FirstToolEmpty:
    """Calls the first offered tool with no arguments, then says it is done."""

    def __init__(self, task: Any) -> None:
        pass

    async def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        if any(m["role"] == "assistant" and m.get("tool_calls") for m in observation["messages"]):
            return {"role": "assistant", "content": "Done."}
        name = observation["tools"][0]["function"]["name"]
        call = {"id": "c0", "type": "function", "function": {"name": name, "arguments": {}}}
        return {"role": "assistant", "content": "", "tool_calls": [call]}


class NeverCalls:
    def __init__(self, task: Any) -> None:
        pass

    async def act(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {"role": "assistant", "content": "I would rather not."}


__all__ = ["BOOKSHELF_ID", "REPO", "FirstToolEmpty", "NeverCalls"]
