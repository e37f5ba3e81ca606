"""Run an ASGI app with uvicorn inside the current event loop, for a block (servers in tests, demos).

``uvicorn_config`` is the one place our servers configure uvicorn: a connection whose request does
not arrive within ``idle_timeout_s`` (a silent or trickling client: slowloris) is closed — uvicorn's
own keep-alive timeout only runs between requests and restarts on every byte — and shutdown
(SIGTERM) waits at most ``SHUTDOWN_GRACE_S`` for open streams instead of forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from inftool_env.errors import ServerError

IDLE_TIMEOUT_S = 30.0
SHUTDOWN_GRACE_S = 5


class _RequestDeadline(H11Protocol):
    """h11 as uvicorn runs it, plus a deadline for each request's headers to arrive."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.timeout_keep_alive, self._expire)

    def _expire(self) -> None:
        waiting = self.cycle is None or self.cycle.response_complete  # no request under way
        if waiting and not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(app: Any, *, host: str, port: int, idle_timeout_s: float = IDLE_TIMEOUT_S) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", http=_RequestDeadline,
        timeout_keep_alive=idle_timeout_s, timeout_graceful_shutdown=SHUTDOWN_GRACE_S,  # type: ignore[arg-type]
    )  # fmt: skip


@contextlib.asynccontextmanager
async def running_asgi(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 10.0,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
) -> AsyncIterator[int]:  # fmt: skip
    """Serve ``app`` for the block's duration; yields the bound port (port 0 picks a free one). However
    the block ends, uvicorn is shut down as on SIGTERM (its socket closed), and an error raised in the
    block comes out as itself: uvicorn runs as a plain task, not in a task group that would wrap it."""
    server = uvicorn.Server(uvicorn_config(app, host=host, port=port, idle_timeout_s=idle_timeout_s))
    serving = asyncio.create_task(server.serve(), name=f"uvicorn {host}:{port}")
    try:
        async with asyncio.timeout(startup_timeout):
            while not server.started and not serving.done():
                await asyncio.sleep(0.005)
        if not server.started:  # uvicorn exits (SystemExit) when it cannot bind
            failed = serving.exception() if not serving.cancelled() else None
            raise ServerError(f"cannot serve on {host}:{port}: {failed!r}")
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        try:  # the graceful shutdown gives open streams SHUTDOWN_GRACE_S; past a margin, cut it short
            await asyncio.wait_for(asyncio.shield(serving), SHUTDOWN_GRACE_S + 5)
        except asyncio.CancelledError:  # we are cancelled while waiting: uvicorn with us
            serving.cancel()
            raise
        except BaseException:  # noqa: BLE001 - past the margin, or uvicorn's own failure: it must not replace
            serving.cancel()  # the block's own outcome
            with contextlib.suppress(BaseException):
                await serving
