"""The ``Backend`` protocol: what executes a tool call behind a compiled MCP server.

A backend is stateless itself; each episode owns one state object from ``new_state`` (fresh per
episode, seeded), passed back into every ``call``. A failed call raises ``ToolCallError`` (or any
exception) and becomes an ``isError`` result the model sees; ``snapshot`` gives the state as JSON
for state-match rewards.

Optional attributes: ``deterministic`` (the same seed and calls give the same results and states, so
a checker may reuse a replay), ``replayable`` (False for a proxy to a live system: never call it
again), ``suspends`` (False where ``call`` never awaits: a cancel scope could not act on it, so the
server runs it without one; unset means it may).
"""

from __future__ import annotations

import copy
import marshal
import pickle
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from inftool_env.spec.ir import ToolSpec


@runtime_checkable
class Backend(Protocol):
    def new_state(self, *, seed: int, initial: Mapping[str, Any] | None = None) -> Any:
        """A fresh state for one episode."""
        ...

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], state: Any) -> Any:
        """Run one validated call; return a JSON-compatible result or raise ``ToolCallError``."""
        ...

    def snapshot(self, state: Any) -> Any:
        """The state as JSON, for state-match rewards and replay checks."""
        ...


def copy_tree(value: Any) -> Any:
    """A deep copy of JSON-shaped data (a call's arguments, a state's records, a conversation), several
    times faster than ``copy.deepcopy`` (marshal, in C). What marshal cannot hold (a class instance, a
    subclass: BFCL's file trees) goes through pickle, also in C and about 3x ``copy.deepcopy``'s speed,
    with the same sharing kept; what pickle cannot hold either (a local class, a lock) to ``copy.deepcopy``."""
    try:
        return marshal.loads(marshal.dumps(value))  # noqa: S302 - our own bytes, straight back
    except ValueError:
        pass
    try:
        return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))  # noqa: S301 - our own bytes, straight back
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return copy.deepcopy(value)
