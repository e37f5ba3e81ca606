"""Everything that touches the MCP SDK lives in this package, so an SDK rename touches one place."""

from inftool_env.mcp.client import (
    RemoteTool,
    StdioCommand,
    ToolClient,
    ToolOutcome,
    new_episode_id,
    open_client,
)
from inftool_env.mcp.guards import ERROR_KINDS, ServerLimits
from inftool_env.mcp.server import CompiledServer, to_mcp_tool
from inftool_env.mcp.transports import http_app, running_http, serve_http, serve_stdio

__all__ = [
    "ERROR_KINDS",
    "CompiledServer",
    "RemoteTool",
    "ServerLimits",
    "StdioCommand",
    "ToolClient",
    "ToolOutcome",
    "http_app",
    "new_episode_id",
    "open_client",
    "running_http",
    "serve_http",
    "serve_stdio",
    "to_mcp_tool",
]
