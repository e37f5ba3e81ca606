"""One client for every transport: in-process, stdio (a subprocess), or streamable HTTP (a URL).

``open_client(target)`` yields a ``ToolClient`` whose calls carry this episode's id and seed in
``_meta``, so one server can hold many isolated episodes. Protocol and connection failures are
raised as ``ServerError`` (infrastructure); tool failures are ordinary ``ToolOutcome``s.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from inftool_env.errors import ServerError
from inftool_env.mcp.server import META_EPISODE, META_INITIAL, META_SEED, CompiledServer


@dataclass(frozen=True)
class StdioCommand:
    """A server started as a subprocess speaking MCP on stdin/stdout."""

    command: str
    args: Sequence[str] = ()
    env: Mapping[str, str] | None = None

    @classmethod
    def inftool_serve(cls, spec: str, *extra: str) -> StdioCommand:
        """``inftool serve SPEC …`` in a subprocess of this interpreter."""
        return cls(sys.executable, ("-m", "inftool_env.cli", "serve", spec, "--transport", "stdio", "--quiet", *extra))


Target = CompiledServer | StdioCommand | str


@dataclass(frozen=True)
class ToolOutcome:
    """One call's result as the model will see it."""

    text: str
    structured: Any = None
    is_error: bool = False


@dataclass(frozen=True)
class RemoteTool:
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] = field(default_factory=dict)


class ToolClient:
    def __init__(self, client: Client, meta: dict[str, Any], timeout: float | None) -> None:
        self._client = client
        self._meta = meta
        self._timeout = timeout

    def for_episode(
        self, episode: str, *, seed: int | None = None, initial_state: Mapping[str, Any] | None = None
    ) -> ToolClient:
        """The same connection, speaking for another episode (its own state on the server)."""
        return ToolClient(self._client, episode_meta(episode, seed, initial_state), self._timeout)

    async def list_tools(self) -> list[RemoteTool]:
        try:
            listing = await self._client.list_tools()
        except MCPError as exc:
            raise ServerError(f"tools/list failed: {exc}") from exc
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

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> ToolOutcome:
        try:
            result = await self._client.call_tool(
                name,
                arguments or {},
                read_timeout_seconds=self._timeout,
                meta=self._meta or None,  # type: ignore[arg-type]
            )
        except MCPError as exc:
            raise ServerError(f"tools/call {name!r} failed: {exc}") from exc
        except RuntimeError as exc:  # the SDK's structured-content check: a server outside its own schema
            raise ServerError(f"tools/call {name!r}: {exc}") from exc
        text = "\n".join(getattr(block, "text", "") for block in result.content)
        return ToolOutcome(text=text, structured=result.structured_content, is_error=bool(result.is_error))


@contextlib.asynccontextmanager
async def open_client(
    target: Target,
    *,
    episode: str | None = None,
    seed: int | None = None,
    initial_state: Mapping[str, Any] | None = None,
    timeout: float | None = 30.0,
) -> AsyncIterator[ToolClient]:
    """Connect to ``target``; the episode keys (if given) ride on every call's ``_meta``."""
    meta = episode_meta(episode, seed, initial_state)
    if isinstance(target, CompiledServer):
        server: Any = target.server
    elif isinstance(target, StdioCommand):
        server = StdioServerParameters(
            command=target.command, args=list(target.args), env=dict(target.env) if target.env else None
        )
    else:
        server = target
    try:
        async with contextlib.AsyncExitStack() as stack:
            try:
                client = await stack.enter_async_context(Client(server, read_timeout_seconds=timeout))
            except Exception as exc:
                raise ServerError(f"cannot connect to MCP server {describe(target)}: {_root(exc)}") from exc
            yield ToolClient(client, meta, timeout)
    except BaseExceptionGroup as group:
        # The SDK's task groups wrap whatever the caller's block raised; hand back the error itself.
        leaves = _leaves(group)
        if len(leaves) == 1 and isinstance(leaves[0], Exception):
            raise leaves[0] from None
        raise


def episode_meta(episode: str | None, seed: int | None, initial_state: Mapping[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if episode is not None:
        meta[META_EPISODE] = episode
    if seed is not None:
        meta[META_SEED] = seed
    if initial_state is not None:
        meta[META_INITIAL] = dict(initial_state)
    return meta


def describe(target: Target) -> str:
    if isinstance(target, CompiledServer):
        return f"in-process '{target.suite.name}'"
    if isinstance(target, StdioCommand):
        return "stdio: " + " ".join([target.command, *target.args])
    return target


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def _root(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
