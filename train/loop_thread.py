"""One asyncio loop on a daemon thread, for adapters whose trainer calls our async env from sync code
on any thread (TRL, SkyRL): a process can exit even if nobody closes it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from inftool_env.errors import InftoolError

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str, owner: str) -> None:
        self.owner = owner  # what its errors name: "the TRL environment"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for it."""
        if threading.current_thread() is self.thread or self.loop.is_closed():
            coro.close()
            why = "is closed" if self.loop.is_closed() else "cannot be called from its own event loop"
            raise InftoolError(f"{self.owner} {why}")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()
