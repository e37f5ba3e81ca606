"""The worker pool every runner borrows from: bounded, reused, and no worker lost or left holding an
episode's server state, whatever ended the episode."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from inftool_env.env.batch import play
from inftool_env.env.core import ToolEnv
from inftool_env.env.pool import WorkerPool
from inftool_env.errors import InftoolError
from inftool_env.policies.oracle import OraclePolicy
from tests.env.test_core import ADD, bookshelf_env, call

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def shelf_pool(size: int | None = None) -> AsyncIterator[tuple[ToolEnv, WorkerPool]]:
    """A Bookshelf env and a pool of its workers, both closed after."""
    env = bookshelf_env([ADD])
    pool = WorkerPool(env, size=size)
    try:
        yield env, pool
    finally:
        await pool.close()
        await env.close()


async def test_a_sized_pool_lends_at_most_its_size_and_reuses_its_workers():
    async with shelf_pool(size=2) as (env, pool):
        in_flight, most = 0, 0

        async def one(seed: int) -> None:
            nonlocal in_flight, most
            async with pool.borrow() as worker:
                in_flight += 1
                most = max(most, in_flight)
                await worker.reset(seed=seed)
                await asyncio.sleep(0.01)
                in_flight -= 1

        await asyncio.gather(*(one(s) for s in range(6)))
        assert most == 2 and len(pool.spawned) == 2


async def test_a_worker_comes_back_holding_no_state_after_an_error_or_a_cancel():
    async with shelf_pool(size=1) as (env, pool):
        server = env.servers["shelf"]
        with pytest.raises(RuntimeError, match="policy broke"):
            async with pool.borrow() as worker:
                await worker.reset(seed=1)
                await worker.step(call("addBook", title="T", author="A"))
                assert server.live_episodes == 1
                raise RuntimeError("policy broke")
        assert server.live_episodes == 0

        started = asyncio.Event()

        async def cancelled() -> None:
            async with pool.borrow() as worker:
                await worker.reset(seed=2)
                await worker.step(call("addBook", title="T", author="A"))
                assert server.live_episodes == 1
                started.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(cancelled())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert server.live_episodes == 0
        async with pool.borrow() as again:
            assert again is worker and len(pool.spawned) == 1  # the same worker, not a fresh spawn


async def test_a_cancel_while_the_episode_ends_still_returns_the_worker(monkeypatch):
    async with shelf_pool(size=1) as (env, pool):
        ending = asyncio.Event()

        async def slow_end() -> None:
            ending.set()
            await asyncio.sleep(60)

        async def borrower() -> None:
            async with pool.borrow() as worker:
                monkeypatch.setattr(worker, "end_episode", slow_end)

        task = asyncio.create_task(borrower())
        await ending.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        monkeypatch.undo()
        lent = await asyncio.wait_for(play(pool, OraclePolicy, seed=3, task_id="add"), timeout=10)
        assert lent.reward is not None and lent.reward.reward == 1.0 and len(pool.spawned) == 1


async def test_a_discarded_worker_is_closed_and_never_lent_again():
    async with shelf_pool() as (env, pool):
        first = pool.take()
        await first.reset(seed=1)
        await pool.discard(first)
        assert pool.spawned == []
        second = pool.take()
        assert second is not first
        await pool.give_back(second)
        assert pool.take() is second


async def test_an_env_that_cannot_start_is_a_recorded_episode_not_a_crash():
    async with shelf_pool() as (env, pool):
        broken = await play(pool, OraclePolicy, seed=1, task_id="no-such-task")
        assert broken.truncated and broken.truncation_reason == "error" and "no-such-task" in (broken.error or "")
        assert broken.task_id == "no-such-task" and broken.env_id == env.config.id


def test_a_pool_needs_a_worker():
    with pytest.raises(ValueError, match="at least one worker"):
        WorkerPool(bookshelf_env([ADD]), size=0)


async def test_a_closed_pool_lends_nothing_and_keeps_no_worker_given_back_late():
    async with shelf_pool() as (env, pool):
        late = pool.take()
        await late.reset(seed=1)
        await pool.close()  # while `late` is still lent (a Ray actor closed mid-episode)
        await pool.give_back(late)
        with pytest.raises(InftoolError, match="the worker pool is closed"):
            pool.take()
        sized = WorkerPool(env, size=1)
        with pytest.raises(InftoolError, match="borrow a worker"):
            sized.take()  # it would lend past its size
