"""User simulators: who speaks to the assistant — scripted, template-driven, or an LLM (``llm:MODEL``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from inftool_env.errors import RegistrationError
from inftool_env.llm import Usage
from inftool_env.tasks import Task


@dataclass(frozen=True)
class UserReply:
    message: str | None
    done: bool = False
    usage: Usage | None = None  # what a model-backed user spent on this reply


class UserSimulator(Protocol):
    """Sees the conversation and the task (goal, hidden facts); answers or says it is done."""

    async def opening(self, task: Task) -> str: ...

    async def reply(self, task: Task, messages: list[dict[str, Any]]) -> UserReply: ...


def _user_turns_so_far(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m.get("role") == "user")


class ScriptedUser:
    """Says the task's turns in order and is done after the last (BFCL multi-turn semantics)."""

    async def opening(self, task: Task) -> str:
        return task.turns[0]

    async def reply(self, task: Task, messages: list[dict[str, Any]]) -> UserReply:
        said = _user_turns_so_far(messages)
        if said < len(task.turns):
            return UserReply(task.turns[said])
        return UserReply(None, done=True)


class TemplateUser:
    """Goal-driven without an LLM: opens with the goal, answers a question about a hidden fact with
    that fact, and is done once the assistant answers without asking anything."""

    async def opening(self, task: Task) -> str:
        return task.goal or task.turns[0]

    async def reply(self, task: Task, messages: list[dict[str, Any]]) -> UserReply:
        last = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "assistant"), "")
        asked = [k for k in task.facts if _mentions(last, k)]
        if asked:
            return UserReply(" ".join(f"My {k.replace('_', ' ')} is {task.facts[k]}." for k in asked))
        if "?" in last:
            return UserReply("I don't know that. Please go ahead with what you have.")
        return UserReply(None, done=True)


def _mentions(text: str, key: str) -> bool:
    words = key.replace("_", " ").lower()
    return re.search(r"\b" + re.escape(words) + r"\b", text.lower()) is not None


USERS: dict[str, type[ScriptedUser] | type[TemplateUser]] = {"scripted": ScriptedUser, "template": TemplateUser}


def get_user(name: str) -> UserSimulator:
    """``scripted``, ``template``, or ``llm:MODEL[?temperature=T]`` (a model string, see inftool_env.llm)."""
    if name.startswith("llm:"):
        from inftool_env.users.llm import LLMUser

        return LLMUser.from_spec(name.removeprefix("llm:"))
    if name not in USERS:
        raise RegistrationError(f"unknown user simulator {name!r}; known: {', '.join(USERS)}, llm:MODEL")
    user: UserSimulator = USERS[name]()
    return user
