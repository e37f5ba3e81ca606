"""Run a function in a forked child and take back what it returns, without letting a hung child linger."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any


def _put(target: Callable[..., Any], args: tuple[Any, ...], queue: Any) -> None:
    queue.put(target(*args))


def in_fork(target: Callable[..., Any], *args: Any, timeout: float = 120) -> Any:
    """``target(*args)`` in a forked child; its result (raises ``queue.Empty`` if it hangs past ``timeout``)."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_put, args=(target, args, queue), daemon=True)
    child.start()
    try:
        result = queue.get(timeout=timeout)
        child.join(timeout=30)
    finally:
        child.kill()
    assert child.exitcode == 0, f"the forked child exited with {child.exitcode}"
    return result
