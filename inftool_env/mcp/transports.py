"""Run a CompiledServer over stdio or streamable HTTP (in-process needs no transport: see client.py).

HTTP security: the server binds loopback unless told otherwise; requests must name this server's
exact ``host:port`` in ``Host`` (and ``Origin``, when a browser sends one) — the SDK's own check
accepts any port by prefix, so ours replaces it (DNS rebinding; a server on every interface accepts
its loopback names, its host name and ``allowed_hosts``); with a ``token`` (``inftool serve --token``
or ``INFTOOL_TOKEN``) every request needs ``Authorization: Bearer TOKEN`` or gets 401; bodies over
``max_body_bytes`` get 413; a client whose request headers or body do not arrive within
``IDLE_TIMEOUT_S`` is dropped (``asgi.py``), and shutdown waits at most ``SHUTDOWN_GRACE_S`` for
open streams. Anyone who passes these
checks may call tools and read any episode whose id they know: served backends (``python:``) and
manifests are trusted code, run with this process's rights — serve only specs you trust.
"""

from __future__ import annotations

import contextlib
import hmac
import socket
from collections.abc import AsyncIterator, Callable, MutableMapping, Sequence
from typing import Any

import anyio
import uvicorn
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse

from inftool_env.asgi import IDLE_TIMEOUT_S, running_asgi, uvicorn_config
from inftool_env.errors import ServerError
from inftool_env.mcp.server import CompiledServer

LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_BODY_BYTES = 16 * 1024 * 1024  # a call's arguments and initial state; more is refused with 413

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


async def serve_stdio(compiled: CompiledServer) -> None:
    """Serve one client on this process's stdin/stdout until it closes them."""
    async with stdio_server() as (read, write):
        await compiled.server.run(read, write, compiled.server.create_initialization_options())


def http_app(
    compiled: CompiledServer,
    *,
    host: str = "127.0.0.1",
    path: str = "/mcp",
    token: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    allowed_hosts: Sequence[str] = (),
    body_timeout_s: float = IDLE_TIMEOUT_S,
) -> Any:
    """The ASGI app for streamable HTTP: the SDK's app behind exact Host/Origin checks and, with
    ``token``, a bearer token. Its ``router.lifespan_context`` is the SDK app's (mount it with it)."""
    # The SDK's prefix-matching DNS-rebinding check is off; ours (below) matches exactly.
    app = compiled.server.streamable_http_app(
        streamable_http_path=path,
        host=host,
        max_request_body_size=max_body_bytes,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return _Guarded(app, host=host, token=token, allowed_hosts=allowed_hosts, body_timeout_s=body_timeout_s)


class _Guarded:
    """Exact Host/Origin (the port is the one this request arrived on), the bearer token, and a
    deadline on each chunk of a request body."""

    def __init__(
        self, app: Any, *, host: str, token: str | None, allowed_hosts: Sequence[str], body_timeout_s: float
    ) -> None:
        self.app = app
        self.router = app.router  # the SDK app's lifespan, for whoever mounts this app
        names = {"127.0.0.1", "localhost", "[::1]"}
        if host in ("0.0.0.0", "::"):  # noqa: S104 - every interface: this machine's names too
            names |= {socket.gethostname(), socket.getfqdn()}
        elif host not in LOOPBACK:
            names = {_bracketed(host)}
        self.names = names | {_bracketed(h) for h in allowed_hosts}
        self.token = token.encode() if token else None
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        body_done = False

        async def receive_in_time() -> Message:
            nonlocal body_done
            if body_done:  # past the body, receive() waits for a disconnect: as long as it likes
                return await receive()
            with anyio.move_on_after(self.body_timeout_s):
                message: Message = await receive()
                body_done = message["type"] != "http.request" or not message.get("more_body", False)
                return message
            return {"type": "http.disconnect"}  # a client this slow is treated as gone

        await self.app(scope, receive_in_time, send)

    def _refusal(self, scope: Scope) -> PlainTextResponse | None:
        headers = Headers(scope=scope)
        server = scope.get("server")
        port = server[1] if server else None
        allowed = {f"{name}:{port}" for name in self.names}
        if headers.get("host", "") not in allowed:
            return PlainTextResponse("Invalid Host header", status_code=421)
        origin = headers.get("origin")
        if origin is not None and origin not in {f"http://{a}" for a in allowed}:
            return PlainTextResponse("Invalid Origin header", status_code=403)
        if self.token is not None:
            given = headers.get("authorization", "")
            scheme, _, credential = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), self.token):
                return PlainTextResponse("Unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return None


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


async def serve_http(
    compiled: CompiledServer,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until cancelled (or SIGTERM/SIGINT);
    ``on_listening`` is called once the port is bound (``inftool serve`` says "serving" then)."""
    # uvicorn reports a busy port by exiting the process; probe first to raise a clean error. (Handing
    # uvicorn a pre-bound socket instead measured 44 ms a call against 1.7 ms: bench_transports.py.)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except (OSError, OverflowError) as exc:  # OverflowError: a port past 65535
            raise ServerError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        app = http_app(compiled, host=host, token=token, allowed_hosts=allowed_hosts)
        await _Server(uvicorn_config(app, host=host, port=port), on_listening).serve()
    except SystemExit:
        raise ServerError(f"cannot listen on {host}:{port}") from None


class _Server(uvicorn.Server):
    """uvicorn, calling ``on_listening`` once its startup has bound the socket."""

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None] | None) -> None:
        super().__init__(config)
        self.on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_listening is not None:
            self.on_listening()


@contextlib.asynccontextmanager
async def running_http(
    compiled: CompiledServer,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
    token: str | None = None,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
) -> AsyncIterator[str]:
    """Serve in this event loop for the block's duration; yields the URL (port 0 picks a free one)."""
    app = http_app(compiled, host=host, token=token, body_timeout_s=idle_timeout_s)
    async with running_asgi(
        app, host=host, port=port, startup_timeout=startup_timeout, idle_timeout_s=idle_timeout_s
    ) as bound:
        yield f"http://{_bracketed(host)}:{bound}/mcp"
