"""A call's time limit that does not count the time this event loop itself was stalled.

The env gives a server ``call_timeout_s + ANSWER_GRACE_S`` to answer, and a server that does not is
taken for hung: the episode is truncated and its connections reopened. But a server starts its own
budget when its handler runs, and with a thousand episodes in one process the event loop stalls for
seconds at a time (a long tool, a big JSON document, a CA bundle load): the request then waits in
transit, or the answer does, and a call the server cut on time would look hung. So the env's clock
stops while the loop is stalled: a monitor, ticking only while some call waits, measures how late its
ticks run, and a limit is moved back by the lateness accrued since its call began.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

TICK_S = 0.1


class LoopLag:
    """The total lateness of this loop's timers while anyone watches (a callback chain, no task)."""

    _of: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.watchers = 0
        self._late = 0.0
        self._due = 0.0
        self._tick: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> LoopLag:
        lag = cls._of.get(loop)
        if lag is None:
            lag = cls._of[loop] = cls(loop)
        return lag

    def total(self) -> float:
        """Seconds of lateness so far, counting a tick that is overdue right now."""
        overdue = max(0.0, self.loop.time() - self._due) if self._tick is not None else 0.0
        return self._late + overdue

    def watch(self) -> None:
        self.watchers += 1
        if self._tick is None:
            self._schedule()

    def unwatch(self) -> None:
        self.watchers -= 1
        if self.watchers <= 0 and self._tick is not None:
            self._tick.cancel()
            self._tick = None

    def _schedule(self) -> None:
        self._due = self.loop.time() + TICK_S
        self._tick = self.loop.call_at(self._due, self._on_tick)

    def _on_tick(self) -> None:
        self._late += max(0.0, self.loop.time() - self._due)
        self._tick = None
        if self.watchers > 0:
            self._schedule()


@contextlib.asynccontextmanager
async def timeout_excluding_stalls(limit: float) -> AsyncIterator[None]:
    """Like ``asyncio.timeout(limit)`` (TimeoutError at the end), but the limit is extended by however
    long the event loop was stalled in the meantime."""
    loop = asyncio.get_running_loop()
    lag = LoopLag.of(loop)
    lag.watch()
    start, lag_at_start = loop.time(), lag.total()
    handle: asyncio.TimerHandle | None = None
    try:
        async with asyncio.timeout(None) as timeout:

            def check() -> None:
                nonlocal handle
                deadline = start + limit + (lag.total() - lag_at_start)
                if loop.time() >= deadline - 1e-3:
                    timeout.reschedule(loop.time())  # expire now: the block gets its TimeoutError
                else:
                    handle = loop.call_at(deadline, check)

            handle = loop.call_at(start + limit, check)
            yield
    finally:
        if handle is not None:
            handle.cancel()
        lag.unwatch()
