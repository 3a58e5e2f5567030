"""The MCP server: hopmem's memory and agent as MCP tools and resources, over stdio or streamable HTTP.

A thin face over the SDK (``hopmem.Memory``, ``hopmem.Agent``), built with the official ``mcp`` SDK's ``MCPServer``:
``handles`` (who a call acts for, and the SDK objects per identity), ``tools`` (the seven tools), ``server`` (the
server, its resources, errors as one sentence) and ``http`` (the streamable-HTTP ASGI app, behind API keys when
given a key check). ``hopmem mcp`` (``hopmem.app.mcp_cli``) serves it over stdio.
"""

from __future__ import annotations

from hopmem.app.mcp.handles import Identity
from hopmem.app.mcp.http import MCPHttpApp, bearer_token, mcp_http_app
from hopmem.app.mcp.server import HopmemMCP, build_server

__all__ = ["HopmemMCP", "Identity", "MCPHttpApp", "bearer_token", "build_server", "mcp_http_app"]
