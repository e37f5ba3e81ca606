"""The adapters' loop thread in a forked process: an error at once, where a call used to wait forever."""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest

from inftool_env.errors import InftoolError
from inftool_env.train.loop_thread import LoopThread


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


def _in_fork(loop: LoopThread, queue: multiprocessing.Queue) -> None:
    try:
        outcome = f"ran: {loop.run(_answer())}"
    except InftoolError as exc:
        outcome = str(exc)
    loop.stop()  # the parent's to stop: nothing happens here, and nothing hangs
    queue.put((outcome, loop.usable))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # forking a process with threads (Python 3.12+)
def test_a_fork_refuses_the_parents_loop_and_the_parent_keeps_it():
    loop = LoopThread("inftool-test", "the test environment")
    try:
        assert loop.run(_answer()) == 42 and loop.usable
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_in_fork, args=(loop, queue), daemon=True)
        child.start()
        try:
            outcome, usable = queue.get(timeout=60)
            child.join(timeout=30)
        finally:
            child.kill()
        assert "the test environment was made in process" in outcome and "is a fork of it" in outcome
        assert not usable
        assert loop.run(_answer()) == 42  # the parent's loop runs on
    finally:
        loop.stop()
    with pytest.raises(InftoolError, match="is closed"):
        loop.run(_answer())
