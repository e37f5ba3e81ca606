"""Envs whose servers already run elsewhere: ``--server NAME=URL`` reaches them over streamable HTTP.

Many workers (Ray actors, machines) then share one server per name. Isolation holds because the server
keys each episode's state by the episode id every call carries; the env still compiles the spec locally,
for the reward's replay (it never serves from that copy).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection, Mapping, Sequence

from inftool_env.env.core import ToolEnv
from inftool_env.errors import InftoolError
from inftool_env.mcp import CompiledServer, ToolClient, open_client


def parse_server_urls(values: Sequence[str] | None) -> dict[str, str]:
    """``["bookshelf=http://10.0.0.5:8000/mcp", …]`` -> {name: url}."""
    urls: dict[str, str] = {}
    for value in values or ():
        name, sep, url = value.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise InftoolError(f"--server {value!r}: expected NAME=URL, e.g. bookshelf=http://127.0.0.1:8000/mcp")
        if name in urls:
            raise InftoolError(f"--server: {name!r} is given twice")
        urls[name] = url
    return urls


def check_server_names(env_id: str, servers: Collection[str], urls: Mapping[str, str]) -> None:
    """Every name in ``urls`` must be one of the env's ``servers``."""
    unknown = sorted(set(urls) - set(servers))
    if unknown:
        raise InftoolError(f"--server {unknown}: {env_id} has servers {sorted(servers)}")


class SharedServersEnv(ToolEnv):
    """A ToolEnv whose servers named in ``urls`` are reached at those URLs instead of being started."""

    def __init__(self, base: ToolEnv, urls: Mapping[str, str]) -> None:
        check_server_names(base.config.id, base.servers, urls)
        # All servers remote: the env is an HTTP client (in-process inspection of state does not apply).
        config = base.config.model_copy(update={"transport": "http"}) if set(urls) == set(base.servers) else base.config
        super().__init__(config, base.tasks, base.servers, user=base.user, reward_fn=base.reward_fn)
        self.urls = dict(urls)

    def spawn(self) -> SharedServersEnv:
        return SharedServersEnv(self, self.urls)

    def _keeps_episodes(self, name: str) -> bool:
        return name in self.urls

    @contextlib.asynccontextmanager
    async def _open(self, name: str, compiled: CompiledServer) -> AsyncIterator[ToolClient]:
        if name not in self.urls:
            async with super()._open(name, compiled) as client:
                yield client
            return
        # The env bounds each call itself; the connection's own limit only catches a server gone silent
        # (a few seconds' grace, so a server's own timeout answer arrives first).
        async with open_client(self.urls[name], timeout=self.limits.call_timeout_s + 5.0) as client:
            yield client


def with_servers(env: ToolEnv, urls: Mapping[str, str]) -> ToolEnv:
    """``env`` itself when no URL is given."""
    return SharedServersEnv(env, urls) if urls else env
