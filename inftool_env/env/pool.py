"""Workers of one env, lent one episode at a time: the one pool behind every way of running many episodes
(``run_batch``, the Ray actors, GRPO's rollouts and warm start, the OpenRLHF executor).

A worker is spawned from the env (its compiled servers and connections shared, its episode its own) the
first time none is idle, and kept. It comes back with its episode ended (every server told to drop its
state; a cancel that lands while remote servers are being told leaves the rest to their idle timeout),
and it comes back even then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from inftool_env.env.core import ToolEnv
from inftool_env.errors import InftoolError

logger = logging.getLogger(__name__)


class WorkerPool:
    """``size`` bounds the workers (a borrower waits for one to come back); ``None`` grows the pool to
    one worker per episode in flight."""

    def __init__(self, env: ToolEnv, *, size: int | None = None) -> None:
        if size is not None and size < 1:
            raise ValueError(f"a worker pool needs at least one worker, not {size}")
        self.env = env
        self.spawned: list[ToolEnv] = []
        self._idle: list[ToolEnv] = []
        self._slots = asyncio.Semaphore(size) if size is not None else None
        self._closed = False

    @contextlib.asynccontextmanager
    async def borrow(self) -> AsyncIterator[ToolEnv]:
        async with self._slots or contextlib.nullcontext():
            worker = self._lend()
            try:
                yield worker
            finally:
                await self.give_back(worker)

    def take(self) -> ToolEnv:
        """A worker for an episode that spans several calls (give it back, or discard it). A pool with a
        ``size`` lends only through ``borrow``, which waits for a free one."""
        if self._slots is not None:
            raise InftoolError("this worker pool has a size: borrow a worker (async with pool.borrow())")
        return self._lend()

    def _lend(self) -> ToolEnv:
        if self._closed:
            raise InftoolError(f"{self.env.config.id}: the worker pool is closed")
        if self._idle:
            return self._idle.pop()
        worker = self.env.spawn()
        self.spawned.append(worker)
        return worker

    async def give_back(self, worker: ToolEnv) -> None:
        if self._closed:  # lent before the pool closed: close() has closed it, and nothing lends it again
            return
        try:
            await worker.end_episode()
        finally:  # a cancel while it ends must not take the worker out of the pool
            self._idle.append(worker)

    async def discard(self, worker: ToolEnv) -> None:
        """For a worker left mid-episode (an error, a cancel): closed, never lent again."""
        with contextlib.suppress(ValueError):
            self.spawned.remove(worker)
        await worker.close()

    async def close(self) -> None:
        """Closes every worker, lent ones included, and lends no more; never raises (a worker's close
        problem is logged)."""
        self._closed = True
        workers, self.spawned, self._idle = self.spawned, [], []
        closed = await asyncio.gather(*(worker.close() for worker in workers), return_exceptions=True)
        for problem in closed:
            if problem is not None:
                logger.warning("%s: closing a worker: %r", self.env.config.id, problem)
