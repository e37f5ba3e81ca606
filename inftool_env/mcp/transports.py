"""Run a CompiledServer over stdio or streamable HTTP (in-process needs no transport: see client.py)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings

from inftool_env.asgi import running_asgi
from inftool_env.errors import ServerError
from inftool_env.mcp.server import CompiledServer

LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def serve_stdio(compiled: CompiledServer) -> None:
    """Serve one client on this process's stdin/stdout until it closes them."""
    async with stdio_server() as (read, write):
        await compiled.server.run(read, write, compiled.server.create_initialization_options())


def http_app(compiled: CompiledServer, *, host: str = "127.0.0.1", path: str = "/mcp") -> Any:
    """The Starlette app for streamable HTTP, with DNS-rebinding protection on for any host."""
    security = None
    if host not in LOOPBACK:
        # The SDK turns the protection on by itself only for loopback hosts.
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[f"{host}:*", *(f"{h}:*" for h in ("127.0.0.1", "localhost"))],
            allowed_origins=[f"http://{host}:*", "http://127.0.0.1:*", "http://localhost:*"],
        )
    return compiled.server.streamable_http_app(streamable_http_path=path, host=host, transport_security=security)


def _uvicorn(compiled: CompiledServer, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(http_app(compiled, host=host), host=host, port=port, log_level="warning", lifespan="on")
    return uvicorn.Server(config)


async def serve_http(compiled: CompiledServer, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until cancelled."""
    # uvicorn reports a busy port by exiting the process; probe first to raise a clean error. (Handing
    # uvicorn a pre-bound socket instead measured 44 ms a call against 1.7 ms: bench_transports.py.)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        await _uvicorn(compiled, host, port).serve()
    except SystemExit:
        raise ServerError(f"cannot listen on {host}:{port}") from None


@contextlib.asynccontextmanager
async def running_http(
    compiled: CompiledServer, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 10.0
) -> AsyncIterator[str]:
    """Serve in this event loop for the block's duration; yields the URL (port 0 picks a free one)."""
    async with running_asgi(
        http_app(compiled, host=host), host=host, port=port, startup_timeout=startup_timeout
    ) as bound:
        yield f"http://{host}:{bound}/mcp"
