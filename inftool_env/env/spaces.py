"""Gymnasium spaces for chat: any Unicode text (``spaces.Text`` only accepts its charset)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

ROLES = ("system", "user", "assistant", "tool")
# Samples draw from several scripts on purpose: real chat is not ASCII.
_ALPHABET = list("abcdefghijklmnopqrstuvwxyz ABCÄÖÜéèçñßøå—–…‘’“”€£¥漢字かなカナ한국어Ελληνικάкириллица😀☀✓")


def _text(rng: np.random.Generator, max_length: int) -> str:
    n = int(rng.integers(0, max_length + 1))
    return "".join(_ALPHABET[i] for i in rng.integers(0, len(_ALPHABET), size=n))


class _ObjectSpace(spaces.Space[Any]):
    """Spaces of Python objects: equal when of the same kind (vector envs compare sub-env spaces)."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other).get("max_length") == vars(self).get("max_length")

    def __hash__(self) -> int:
        return hash(type(self))

    @property
    def is_np_flattenable(self) -> bool:
        return False


class UnicodeText(_ObjectSpace):
    def __init__(self, max_length: int = 1 << 20, seed: int | None = None) -> None:
        super().__init__(dtype=object, seed=seed)
        self.max_length = max_length

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        return _text(self.np_random, 32)


class ConversationSpace(_ObjectSpace):
    """``{"messages": [OpenAI-style messages], "tools": [OpenAI tool dicts]}``."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(dtype=object, seed=seed)

    def contains(self, x: Any) -> bool:
        if not isinstance(x, dict) or set(x) != {"messages", "tools"}:
            return False
        messages, tools = x["messages"], x["tools"]
        return (
            isinstance(messages, list)
            and all(
                isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content", ""), str | None)
                for m in messages
            )
            and isinstance(tools, list)
            and all(isinstance(t, dict) for t in tools)
        )

    def sample(self, mask: Any = None, probability: Any = None) -> dict[str, Any]:
        rng = self.np_random
        messages = [{"role": "user", "content": _text(rng, 40)}, {"role": "assistant", "content": _text(rng, 40)}]
        return {"messages": messages, "tools": []}


class AssistantTurnSpace(_ObjectSpace):
    """One assistant turn: raw text, or an OpenAI-style message dict with optional ``tool_calls``."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(dtype=object, seed=seed)

    def contains(self, x: Any) -> bool:
        if isinstance(x, str):
            return True
        return (
            isinstance(x, dict)
            and isinstance(x.get("content", ""), str | None)
            and (isinstance(x.get("tool_calls", []), list))
        )

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        return _text(self.np_random, 64)
