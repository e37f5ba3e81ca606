"""The adapters' loop thread in a forked process: an error at once, where a call used to wait forever."""

from __future__ import annotations

import asyncio

import pytest

from inftool_env.errors import InftoolError
from inftool_env.train.loop_thread import LoopThread
from tests.train.forking import in_fork


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


def _in_fork(loop: LoopThread) -> tuple[str, bool]:
    try:
        outcome = f"ran: {loop.run(_answer())}"
    except InftoolError as exc:
        outcome = str(exc)
    loop.stop()  # the parent's to stop: nothing happens here, and nothing hangs
    return outcome, loop.usable


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # forking a process with threads (Python 3.12+)
def test_a_fork_refuses_the_parents_loop_and_the_parent_keeps_it():
    loop = LoopThread("inftool-test", "the test environment")
    try:
        assert loop.run(_answer()) == 42 and loop.usable
        outcome, usable = in_fork(_in_fork, loop, timeout=60)
        assert "the test environment was made in process" in outcome and "is a fork of it" in outcome
        assert not usable
        assert loop.run(_answer()) == 42  # the parent's loop runs on
    finally:
        loop.stop()
    with pytest.raises(InftoolError, match="is closed"):
        loop.run(_answer())
