"""Policy factories for rollout tests: module-level and picklable, so Ray actors can run them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from inftool_env.policies.oracle import OraclePolicy
from inftool_env.rollout.ray_workers import WORKER_ENV_VAR
from inftool_env.tasks import Task


class HangOnWorker:
    """The oracle, except on Ray worker ``rank``, where every episode hangs until the actor is killed."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def __call__(self, task: Task) -> Any:
        return _Hang() if os.environ.get(WORKER_ENV_VAR) == str(self.rank) else OraclePolicy(task)


class _Hang:
    async def act(self, observation: dict[str, Any]) -> Any:
        await asyncio.Event().wait()


class LineCounter:
    """The oracle, whose closing answer says how many lines ``path`` had when its episode began."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, task: Task) -> Any:
        lines = len(self.path.read_text().splitlines()) if self.path.exists() else 0
        return OraclePolicy(task, answer=f"lines={lines}")


class Broken:
    """Raises on its first turn: a policy failure, recorded on the trajectory."""

    def __call__(self, task: Task) -> Any:
        return self

    async def act(self, observation: dict[str, Any]) -> Any:
        raise RuntimeError("the model endpoint is down")


def answer(record: dict[str, Any]) -> str:
    """The assistant's last words in a JSONL record."""
    return next(m["content"] for m in reversed(record["messages"]) if m["role"] == "assistant")
