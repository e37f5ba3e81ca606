"""A chat model that replies from a script: the fake at the LLM boundary for tests and dry runs.

Each reply is text or an assistant message dict (with ``tool_calls``), or a function of the request.
Token counts are whitespace words: honest about being a fake, yet enough to test accounting. One object
answers its requests in the order they arrive; ``for_episode()`` is a copy that replays the script from
its start (the ``scripted:FILE`` policy takes one per episode, so a dry run reads alike at any concurrency).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inftool_env.errors import PolicyError
from inftool_env.llm import Completion, Usage

REPLY_SHAPE = (
    'a string (the assistant\'s text) or an object (an assistant message: {"content": …, '
    '"tool_calls": [{"function": {"name": …, "arguments": {…}}}]})'
)
Reply = str | dict[str, Any] | Callable[[list[dict[str, Any]], list[dict[str, Any]] | None], "str | dict[str, Any]"]


class ScriptedChat:
    def __init__(self, replies: Sequence[Reply], *, name: str = "scripted", cycle: bool = False) -> None:
        if not replies:
            raise PolicyError("a scripted model needs at least one reply")
        self.name, self.replies, self.cycle = name, list(replies), cycle
        for i, reply in enumerate(self.replies):  # at load, not at the turn that reaches it
            if not callable(reply):
                self._check(i, reply)
        self.requests: list[dict[str, Any]] = []

    def for_episode(self) -> ScriptedChat:
        """The same script, from its first reply, with requests of its own (the replies are checked already)."""
        fresh = copy.copy(self)
        fresh.requests = []
        return fresh

    def _check(self, i: int, reply: Any) -> None:
        if not isinstance(reply, str | dict):
            shown = json.dumps(reply, default=repr, ensure_ascii=False)
            raise PolicyError(f"{self.name}: reply [{i}] is {shown[:80]} ({type(reply).__name__}); expected "
                              f"{REPLY_SHAPE}")  # fmt: skip

    @classmethod
    def from_file(cls, path: str) -> ScriptedChat:
        try:
            replies = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise PolicyError(f"cannot read scripted replies from {path}: {exc}") from None
        if not isinstance(replies, list):
            raise PolicyError(f"{path}: expected a JSON list of replies")
        return cls(replies, name=f"scripted:{path}", cycle=True)

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        logprobs: bool = False,
    ) -> Completion:
        request = {"messages": messages, "tools": tools, "temperature": temperature, "seed": seed}
        self.requests.append(request)
        n = len(self.requests) - 1
        if n >= len(self.replies) and not self.cycle:
            raise PolicyError(f"the script has {len(self.replies)} replies and reply {n + 1} was asked for")
        reply = self.replies[n % len(self.replies)]
        if callable(reply):
            reply = reply(messages, tools)
            self._check(n % len(self.replies), reply)
        message = {"role": "assistant", "content": reply} if isinstance(reply, str) else dict(reply)
        message.setdefault("role", "assistant")
        message.setdefault("content", "")
        prompt = sum(len(str(m.get("content") or "").split()) for m in messages)
        calls = message.get("tool_calls")
        completion = len(str(message["content"]).split()) + (len(json.dumps(calls).split()) if calls else 0)
        return Completion(message, Usage(prompt, completion, 1), "tool_calls" if message.get("tool_calls") else "stop")
