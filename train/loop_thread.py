"""One asyncio loop on a daemon thread, for adapters whose trainer calls our async env from sync code
on any thread (TRL, SkyRL): a process can exit even if nobody closes it.

A process forked after the loop started has the loop's objects but not its thread: nothing would
ever run what it is handed, so a call from there is an error, not a wait that never ends."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from inftool_env.errors import InftoolError

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str, owner: str) -> None:
        self.owner = owner  # what its errors name: "the TRL environment"
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    @property
    def forked(self) -> bool:
        """Whether this process is a fork of the one whose thread runs the loop."""
        return os.getpid() != self.pid

    @property
    def usable(self) -> bool:
        return not self.forked and not self.loop.is_closed()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it."""
        if self.forked:
            coro.close()
            raise InftoolError(
                f"{self.owner} was made in process {self.pid}, and this process is a fork of it, where its event "
                "loop does not run: make the environment in this process (or start workers with 'spawn')"
            )
        if threading.current_thread() is self.thread or self.loop.is_closed():
            coro.close()
            why = "is closed" if self.loop.is_closed() else "cannot be called from its own event loop"
            raise InftoolError(f"{self.owner} {why}")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        """Stop the loop and its thread; in a fork, nothing: the loop is the parent's to stop."""
        if self.forked or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()
