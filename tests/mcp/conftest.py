from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from inftool_env import compile_spec
from inftool_env.mcp import StdioCommand, ToolClient, new_episode_id, open_client, running_http

TRANSPORTS = ("inprocess", "stdio", "http")


@contextlib.asynccontextmanager
async def connect(transport: str, spec: str | Path, *, seed: int = 0, **client: Any) -> AsyncIterator[ToolClient]:
    """A real server for ``spec`` on ``transport``, reached by the SDK's own client, speaking for an
    episode of its own as the env does (over HTTP a call naming none gets a throwaway state)."""
    client.setdefault("episode", new_episode_id())
    if transport == "stdio":
        command = StdioCommand.inftool_serve(str(spec), "--seed", str(seed))
        async with open_client(command, **client) as c:
            yield c
        return
    compiled = compile_spec(spec, seed=seed)
    if transport == "http":
        async with running_http(compiled) as url, open_client(url, **client) as c:
            yield c
    else:
        async with open_client(compiled, **client) as c:
            yield c


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def connector() -> Callable[..., Any]:
    return connect
