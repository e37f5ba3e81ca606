"""Everything that touches the MCP SDK lives in this package, so an SDK rename touches one place."""

from inftool_env.mcp.client import RemoteTool, StdioCommand, ToolClient, ToolOutcome, open_client
from inftool_env.mcp.server import CompiledServer, to_mcp_tool
from inftool_env.mcp.transports import http_app, running_http, serve_http, serve_stdio

__all__ = [
    "CompiledServer",
    "RemoteTool",
    "StdioCommand",
    "ToolClient",
    "ToolOutcome",
    "http_app",
    "open_client",
    "running_http",
    "serve_http",
    "serve_stdio",
    "to_mcp_tool",
]
