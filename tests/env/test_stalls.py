"""The env's hung-server clock (env/stalls.py): it expires as asyncio.timeout does, except that time the
event loop spent stalled is not counted."""

from __future__ import annotations

import asyncio
import time

import pytest

from inftool_env.env.stalls import LoopLag, timeout_excluding_stalls

pytestmark = pytest.mark.anyio


async def test_a_wait_that_never_ends_times_out_at_the_limit():
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        async with timeout_excluding_stalls(0.2):
            await asyncio.sleep(30)
    assert 0.2 <= loop.time() - start < 2.0
    assert LoopLag.of(loop).watchers == 0 and LoopLag.of(loop)._tick is None  # the monitor stops with it


async def test_time_the_loop_was_stalled_is_not_counted():
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, time.sleep, 0.6)  # the loop is blocked well past the 0.2 s limit
    async with timeout_excluding_stalls(0.2):
        await asyncio.sleep(0.1)  # due at 0.1 s: late only because of the stall
    with pytest.raises(TimeoutError):  # plain asyncio.timeout counts the stall
        loop.call_later(0.05, time.sleep, 0.6)
        async with asyncio.timeout(0.2):
            await asyncio.sleep(0.1)


async def test_nested_and_concurrent_limits_each_keep_their_own_deadline():
    async def waits(limit: float, for_s: float) -> bool:
        try:
            async with timeout_excluding_stalls(limit):
                await asyncio.sleep(for_s)
            return True
        except TimeoutError:
            return False

    assert await asyncio.gather(waits(0.3, 0.05), waits(0.1, 5), waits(0.5, 0.2)) == [True, False, True]
