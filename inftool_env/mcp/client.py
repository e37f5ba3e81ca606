"""One client for every transport: in-process, stdio (a subprocess), or streamable HTTP (a URL).

``open_client(target)`` yields a ``ToolClient`` whose calls carry this episode's id and seed in
``_meta``, so one server can hold many isolated episodes; ``new_episode_id()`` makes unguessable ids
and ``await client.end_episode()`` releases the episode's state on the server, over any transport.
Protocol and connection failures are raised as ``ServerError`` (infrastructure); tool failures are
ordinary ``ToolOutcome``s whose ``error_kind`` is the server's (WIRE.md). Arguments that cannot be
sent as JSON text (a lone surrogate, NaN, a non-object) or are over the limits are refused here, as
the server would refuse them, instead of killing the connection in the SDK's writer. ``token``
sends ``Authorization: Bearer …`` to an HTTP server started with ``--token``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, METHOD_NOT_FOUND

from inftool_env.errors import ServerError
from inftool_env.mcp.guards import ServerLimits, argument_problem, has_lone_surrogate
from inftool_env.mcp.server import (
    META_EPISODE,
    META_ERROR_KIND,
    META_INITIAL,
    META_SEED,
    META_TIMEOUT,
    CompiledServer,
    EndEpisodeParams,
    EndEpisodeRequest,
    EndEpisodeResult,
)

CLIENT_GRACE_S = 2.0  # a call given its own timeout waits this much longer for the server's own answer
_LIMITS = ServerLimits()  # what a server refuses by default, refused here before sending


@dataclass(frozen=True)
class StdioCommand:
    """A server started as a subprocess speaking MCP on stdin/stdout. It gets the MCP SDK's short list of
    environment variables (PATH, HOME, …) and ``env``; with ``inherit_env``, all of this process's, as
    our own ``inftool serve`` needs (PYTHONPATH for a ``python:`` backend, INFTOOL_* settings)."""

    command: str
    args: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    inherit_env: bool = False

    @classmethod
    def inftool_serve(cls, spec: str, *extra: str) -> StdioCommand:
        """``inftool serve SPEC …`` in a subprocess of this interpreter, with this process's environment."""
        return cls(sys.executable, ("-m", "inftool_env.cli", "serve", spec, "--transport", "stdio", "--quiet", *extra),
                   inherit_env=True)  # fmt: skip

    def parameters(self) -> StdioServerParameters:
        """The SDK's parameters; it merges ``env`` over its own default environment."""
        env = dict(self.env or {})
        if self.inherit_env:  # shell functions left out, as the SDK leaves them out of its default
            env = {k: v for k, v in os.environ.items() if not v.startswith("()")} | env
        return StdioServerParameters(command=self.command, args=list(self.args), env=env or None)


Target = CompiledServer | StdioCommand | str


@dataclass(frozen=True)
class ToolOutcome:
    """One call's result as the model will see it."""

    text: str
    structured: Any = None
    is_error: bool = False
    error_kind: str | None = None  # the server's ``inftool/error_kind`` for an error (None from other servers)


@dataclass(frozen=True)
class RemoteTool:
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] = field(default_factory=dict)


class ToolClient:
    def __init__(
        self, client: Client, meta: dict[str, Any], timeout: float | None, stderr: _ChildStderr | None = None
    ) -> None:
        self._client = client
        self._meta = meta
        self._timeout = timeout
        self._stderr = stderr  # a stdio child's: why it died, for a connection lost mid-episode

    @property
    def episode(self) -> str | None:
        """The episode this client speaks for (None: the server's default)."""
        episode = self._meta.get(META_EPISODE)
        return episode if isinstance(episode, str) else None

    def for_episode(
        self, episode: str, *, seed: int | None = None, initial_state: Mapping[str, Any] | None = None
    ) -> ToolClient:
        """The same connection, speaking for another episode (its own state on the server)."""
        return ToolClient(self._client, episode_meta(episode, seed, initial_state), self._timeout, self._stderr)

    async def _failed(self, what: str, exc: MCPError) -> ServerError:
        """``what`` failed; a lost connection to a stdio child also quotes the child's last words
        ("disk quota exceeded"), as at start-up. Not a timeout: a live child's stderr says nothing of it."""
        said = await self._stderr.ending() if exc.code == CONNECTION_CLOSED and self._stderr is not None else ""
        return ServerError(f"{what} failed: {exc}{said}")

    async def list_tools(self) -> list[RemoteTool]:
        try:
            listing = await self._client.list_tools()
        except MCPError as exc:
            raise await self._failed("tools/list", exc) from exc
        return [
            RemoteTool(
                name=t.name,
                description=t.description or "",
                input_schema=dict(t.input_schema),
                output_schema=dict(t.output_schema) if t.output_schema is not None else None,
                annotations=t.annotations.model_dump(exclude_none=True) if t.annotations else {},
            )
            for t in listing.tools
        ]

    async def call(
        self, name: str, arguments: Any = None, *, timeout: float | None = None, wait: float | None = None
    ) -> ToolOutcome:
        """Call a tool. Arguments of any shape give an outcome, never a dead connection; ``timeout``
        asks the server to stop this call's work after that many seconds (kind "timeout"); ``wait``: how
        long to wait for the answer (default ``timeout`` + CLIENT_GRACE_S, else the connection's)."""
        if not isinstance(name, str) or has_lone_surrogate(name):
            return ToolOutcome(f"Unknown tool {_shown(name)}: a tool name is text.", is_error=True,
                               error_kind="unknown_tool")  # fmt: skip
        problem, _ = argument_problem(arguments, max_bytes=_LIMITS.max_argument_bytes,
                                      max_depth=_LIMITS.max_argument_depth)  # fmt: skip
        if problem is not None:
            prefix = "Invalid arguments" if problem.kind == "schema" else "Arguments refused"
            return ToolOutcome(f"{prefix} for {name!r}: {problem.message}", is_error=True, error_kind=problem.kind)
        meta = self._meta if timeout is None else {**self._meta, META_TIMEOUT: timeout}
        try:
            result = await self._client.call_tool(
                name,
                arguments or {},
                read_timeout_seconds=wait or (self._timeout if timeout is None else timeout + CLIENT_GRACE_S),
                meta=meta or None,  # type: ignore[arg-type]
            )
        except MCPError as exc:
            raise await self._failed(f"tools/call {name!r}", exc) from exc
        except RuntimeError as exc:  # the SDK's structured-content check: a server outside its own schema
            raise ServerError(f"tools/call {name!r}: {exc}") from exc
        text = "\n".join(getattr(block, "text", "") for block in result.content)
        kind = None
        if result.is_error and isinstance(result.meta, Mapping):
            found = result.meta.get(META_ERROR_KIND)
            kind = found if isinstance(found, str) else None
        return ToolOutcome(text=text, structured=result.structured_content, is_error=bool(result.is_error),
                           error_kind=kind)  # fmt: skip

    async def end_episode(self) -> bool:
        """Release this client's episode on the server (all transports); whether it held one. A client
        of the default episode, or of a server that keeps no episodes, has nothing to end: False."""
        episode = self.episode
        if episode is None:
            return False
        request = EndEpisodeRequest(params=EndEpisodeParams(episode=episode))
        try:
            result = await self._client.session.send_request(request, EndEpisodeResult, self._timeout)
        except MCPError as exc:
            if exc.code == METHOD_NOT_FOUND:
                return False
            raise await self._failed(f"ending episode {episode!r}", exc) from exc
        return result.ended


@contextlib.asynccontextmanager
async def open_client(
    target: Target,
    *,
    episode: str | None = None,
    seed: int | None = None,
    initial_state: Mapping[str, Any] | None = None,
    timeout: float | None = 30.0,
    token: str | None = None,
) -> AsyncIterator[ToolClient]:
    """Connect to ``target``; the episode keys (if given) ride on every call's ``_meta``. ``token``:
    the bearer token of an HTTP server started with one (ignored by the other transports)."""
    meta = episode_meta(episode, seed, initial_state)
    stderr: _ChildStderr | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            if isinstance(target, CompiledServer):
                server: Any = target.server
            elif isinstance(target, StdioCommand):
                parameters = target.parameters()
                stderr = _ChildStderr()
                server = stdio_client(parameters, errlog=stderr.writer)
            else:
                headers = {"Authorization": f"Bearer {token}"} if token is not None else None
                http = await stack.enter_async_context(_http_client(headers))
                server = streamable_http_client(target, http_client=http)
            try:
                client = await stack.enter_async_context(Client(server, read_timeout_seconds=timeout))
            except Exception as exc:
                said = await stderr.ending() if stderr is not None else ""
                raise ServerError(f"cannot connect to MCP server {describe(target)}: {_root(exc)}{said}") from exc
            finally:
                if stderr is not None:
                    stderr.close_writer()  # the child holds its own copy
            yield ToolClient(client, meta, timeout, stderr)
    except BaseExceptionGroup as group:
        # The SDK's task groups wrap whatever the caller's block raised; hand back the error itself.
        leaves = _leaves(group)
        if len(leaves) == 1 and isinstance(leaves[0], Exception):
            raise leaves[0] from None
        raise


class _ChildStderr:
    """A stdio server's stderr, passed on to ours as it comes, its end kept: a server that exits at
    start-up ("cannot import 'mini'") or mid-episode is then named in the error by its own words, not
    only by the SDK's "Connection closed". A pipe and a thread: the SDK hands the subprocess a file
    (``errlog``)."""

    KEPT_BYTES = 4096
    SHOWN_LINES = 3
    SHOWN_CHARS = 400
    DRAIN_S = 2.0  # to read what an exited child wrote (the SDK has waited for its exit by then)

    def __init__(self) -> None:
        try:  # our own copy of stderr's descriptor: the child's bytes go where they went before
            ours: int | None = os.dup(sys.stderr.fileno())
        except (AttributeError, OSError, ValueError):  # a stderr with no descriptor: the end is only kept
            ours = None
        read, write = os.pipe()
        self.writer = open(write, "w", encoding="utf-8")  # closed by close_writer, once the child has its copy
        self._kept = b""
        self._pump = threading.Thread(target=self._forward, args=(read, ours), name="inftool-stdio-stderr",
                                      daemon=True)  # fmt: skip
        self._pump.start()

    def _forward(self, read: int, ours: int | None) -> None:
        """Until the child (and whatever inherited its stderr) is gone."""
        with open(read, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                self._kept = (self._kept + chunk)[-self.KEPT_BYTES :]
                if ours is None:
                    continue
                try:
                    while chunk:
                        chunk = chunk[os.write(ours, chunk) :]
                except OSError:  # our stderr is gone: read on, or the child blocks on a full pipe
                    os.close(ours)
                    ours = None
        if ours is not None:
            os.close(ours)

    def close_writer(self) -> None:
        if not self.writer.closed:
            self.writer.close()

    async def last_lines(self) -> str:
        """The last lines the child wrote, joined into one ("" if none)."""
        self.close_writer()
        with anyio.move_on_after(self.DRAIN_S):
            while self._pump.is_alive():
                await anyio.sleep(0.01)
        lines = [line.strip() for line in self._kept.decode(errors="replace").splitlines() if line.strip()]
        text = " | ".join(lines[-self.SHOWN_LINES :])
        return text if len(text) <= self.SHOWN_CHARS else "…" + text[-self.SHOWN_CHARS + 1 :]

    async def ending(self) -> str:
        """What an error message ends with: "; its stderr ends: …", or "" if the child wrote nothing."""
        said = await self.last_lines()
        return f"; its stderr ends: {said}" if said else ""


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every HTTP client of this process: each client building its own loads the
    CA bundle on the event loop (100-150 ms here), even for an http:// URL."""
    return httpx2.create_ssl_context()


def _http_client(headers: dict[str, str] | None) -> httpx2.AsyncClient:
    """The SDK's default HTTP client (its timeouts), on the shared TLS context."""
    timeout = httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT)
    return httpx2.AsyncClient(headers=headers, timeout=timeout, verify=_tls_context())


def episode_meta(episode: str | None, seed: int | None, initial_state: Mapping[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if episode is not None:
        meta[META_EPISODE] = episode
    if seed is not None:
        meta[META_SEED] = seed
    if initial_state is not None:
        meta[META_INITIAL] = dict(initial_state)
    return meta


def new_episode_id() -> str:
    """An unguessable id, unique across processes and machines (whoever knows one can act in it)."""
    return uuid.uuid4().hex


def describe(target: Target) -> str:
    if isinstance(target, CompiledServer):
        return f"in-process '{target.suite.name}'"
    if isinstance(target, StdioCommand):
        return "stdio: " + " ".join([target.command, *target.args])
    return target


def _shown(name: Any) -> str:
    return repr(name) if isinstance(name, str) and not has_lone_surrogate(name) else f"({type(name).__name__})"


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def _root(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
