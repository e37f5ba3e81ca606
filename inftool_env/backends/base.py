"""The ``Backend`` protocol: what executes a tool call behind a compiled MCP server.

A backend is stateless itself; each episode owns one state object from ``new_state`` (fresh per
episode, seeded), passed back into every ``call``. A failed call raises ``ToolCallError`` (or any
exception) and becomes an ``isError`` result the model sees; ``snapshot`` gives the state as JSON
for state-match rewards.

Optional attributes: ``deterministic`` (the same seed and calls give the same results and states, so
a checker may reuse a replay), ``replayable`` (False for a proxy to a live system: never call it
again), ``suspends`` (False where ``call`` never awaits: a cancel scope could not act on it, so the
server runs it without one; unset means it may). A deterministic backend may also offer
``freeze_state(state) -> bytes | None`` and ``thaw_state(bytes) -> state``: the whole state (private
parts, a random generator's position, order included) as bytes, where equal bytes mean states that go
on alike (None: this one cannot be frozen), and a state made from them. A checker then starts a
replay where the ground truth's left off, or ends one whose states and remaining calls are the ground
truth's (``PickledState`` offers both by pickle).
"""

from __future__ import annotations

import copy
import copyreg
import io
import marshal
import pickle
import random
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


class PickledState:
    """``freeze_state``/``thaw_state`` by pickle (in C). Two states pickle alike only where every part,
    its order and the sharing between parts included, is alike. The converse need not hold: a dict
    built in another order, or a string that is one object in one state and two in the other (a
    thawed state's keys are its own, a new record's may be the code's) pickle unalike, which costs a
    checker a replay, never a wrong verdict. ``pickler``: a subclass may write some parts its own way."""

    pickler: type[pickle.Pickler]  # set below, once StatePickler exists

    def freeze_state(self, state: Any) -> bytes | None:
        try:
            return pickle_state(state, self.pickler)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
            return None  # a part pickle cannot hold (a lock, a local class): not frozen

    @staticmethod
    def thaw_state(frozen: bytes) -> Any:
        return pickle.loads(frozen)  # noqa: S301 - our own bytes, from freeze_state


def pickle_state(state: Any, pickler: type[pickle.Pickler] | None = None) -> bytes:
    """``pickle.dumps`` (read back by ``pickle.loads``), with a ``random.Random``'s state as one marshal blob:
    a generator is most of a small state's pickle (625 ints), and this reads and writes it in a third
    less time."""
    buffer = io.BytesIO()
    (pickler or StatePickler)(buffer, pickle.HIGHEST_PROTOCOL).dump(state)
    return buffer.getvalue()


class ThawedRandom(random.Random):
    """A thawed state's generator, its position set at its first draw: most replays never draw from the
    generator they thaw, and setting its 625 ints, then reading them back to freeze the state again, was
    most of a small state's cost (BFCL's TravelAPI: thawed in 45 us, now 5; frozen in 67, now 7). Until
    it draws it freezes to the bytes it was thawed from; its draws are ``random.Random``'s from there."""

    _frozen: bytes | None = None  # the position, not yet set

    def _restore(self) -> None:
        frozen, self._frozen = self._frozen, None
        if frozen is not None:
            super().setstate(marshal.loads(frozen))  # noqa: S302 - our own bytes, from pickle_state

    def random(self) -> float:
        self._restore()
        return super().random()

    def getrandbits(self, k: int, /) -> int:
        self._restore()
        return super().getrandbits(k)

    def getstate(self) -> tuple[Any, ...]:
        self._restore()
        return super().getstate()

    def setstate(self, state: tuple[Any, ...]) -> None:
        self._frozen = None
        super().setstate(state)

    def seed(self, *args: Any, **kwargs: Any) -> None:
        self._frozen = None
        super().seed(*args, **kwargs)


def _random_from(state: bytes) -> random.Random:
    rng = ThawedRandom.__new__(ThawedRandom)
    rng._frozen = state
    return rng


def _reduce_random(rng: random.Random) -> tuple[Any, tuple[bytes]]:
    frozen = getattr(rng, "_frozen", None)  # a ThawedRandom that has not drawn: the bytes it came from
    return _random_from, (frozen if frozen is not None else marshal.dumps(rng.getstate(), 2),)


class StatePickler(pickle.Pickler):
    # The exact classes: a subclass of random.Random may hold more than its position.
    dispatch_table = {**copyreg.dispatch_table, random.Random: _reduce_random, ThawedRandom: _reduce_random}


PickledState.pickler = StatePickler


def data_key(value: Any) -> bytes | None:
    """``value``'s identity as data, not as an object: its marshal bytes in format 2, which has no
    back-references and no interning flag, so equal bytes mean equal values type for type (1, 1.0 and True
    differ; floats by their bits), dict keys in the same order, and a copy gives the same bytes. None where
    marshal cannot hold it (a class instance, a subclass)."""
    try:
        return marshal.dumps(value, 2)
    except ValueError:
        return None


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
