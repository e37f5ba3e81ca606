"""Wrap an existing MCP server: list its tools into a ToolSuite, and proxy calls to it.

``stdio:<command line>`` starts the server as a subprocess; an ``http(s)://`` URL reaches it over
streamable HTTP. The proxy holds one upstream connection for the life of the compiled server (the
SDK's lifespan hook), so the upstream's own state persists across calls as its clients expect.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio

from inftool_env.errors import ServerError, SpecError, ToolCallError
from inftool_env.mcp.client import StdioCommand, Target, ToolClient, open_client
from inftool_env.spec.ir import ParamBinding, SkippedOperation, Source, ToolAnnotations, ToolSpec, ToolSuite
from inftool_env.spec.naming import UniqueNames, sanitize_tool_name
from inftool_env.spec.schema import checked


def live_target(source: str) -> Target:
    if source.startswith("stdio:"):
        argv = shlex.split(source.removeprefix("stdio:"))
        if not argv:
            raise SpecError("stdio: needs a command line, e.g. 'stdio:python -m my_server'", source=source)
        return StdioCommand(argv[0], tuple(argv[1:]))
    return source


async def aload_live_suite(source: str) -> ToolSuite:
    try:
        async with open_client(live_target(source)) as client:
            remote = await client.list_tools()
    except ServerError as exc:
        raise SpecError(str(exc), source=source) from None
    names = UniqueNames(limit=128)
    tools, skipped = [], []
    for i, tool in enumerate(remote):
        try:
            schema = checked(tool.input_schema, source=source, pointer=f"/tools/{i}/inputSchema")
        except SpecError as err:
            skipped.append(SkippedOperation(name=tool.name, pointer=err.pointer, reason=err.message))
            continue
        hints = tool.annotations
        tools.append(
            ToolSpec(
                name=names.claim(sanitize_tool_name(tool.name)),
                original_name=tool.name,
                description=tool.description,
                input_schema=schema,
                output_schema=tool.output_schema,
                annotations=ToolAnnotations(
                    read_only=hints.get("read_only_hint"),
                    destructive=hints.get("destructive_hint"),
                    idempotent=hints.get("idempotent_hint"),
                ),
                bindings={k: ParamBinding(location="argument", name=k) for k in schema.get("properties", {})},
                source=Source(file=source, pointer=f"/tools/{i}"),
            )
        )
    return ToolSuite(name=sanitize_tool_name(source.split("/")[-1] or "live"), format="mcp", source=source,
                     tools=tools, skipped=skipped)  # fmt: skip


def load_live_suite(source: str) -> ToolSuite:
    """Synchronous form for the CLI and ``load_spec``; inside an event loop use ``aload_live_suite``."""
    try:
        return anyio.run(aload_live_suite, source)
    except RuntimeError as exc:
        if "already running" in str(exc):
            raise SpecError("inside an event loop, use `await aload_live_suite(...)`", source=source) from None
        raise


class ProxyBackend:
    """Forwards calls to a live MCP server; its state is the upstream's own (not per episode)."""

    replayable = False  # a checker must not call a live system again to replay an episode

    def __init__(self, source: str) -> None:
        self.source = source
        self._client: ToolClient | None = None
        self._users = 0

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        if self._client is not None:  # another connection already opened the upstream
            self._users += 1
            try:
                yield
            finally:
                self._users -= 1
            return
        async with open_client(live_target(self.source)) as client:
            self._client, self._users = client, 1
            try:
                yield
            finally:
                self._client, self._users = None, 0

    def new_state(self, *, seed: int, initial: Mapping[str, Any] | None = None) -> None:
        return None

    def snapshot(self, state: None) -> None:
        return None

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], state: None) -> Any:
        if self._client is None:
            raise ToolCallError(f"upstream {self.source} is not connected")
        outcome = await self._client.call(tool.original_name, arguments)
        if outcome.is_error:
            raise ToolCallError(outcome.text)
        return outcome.structured if outcome.structured is not None else outcome.text
