"""``hopmem mcp``: the MCP server over stdio, for MCP clients that start it as a subprocess."""

from __future__ import annotations

from typing import Annotated

import typer

from hopmem.app.common import settings as _settings


def mcp(
    tenant: Annotated[
        str | None, typer.Option(help="tenant every call acts for (default: the global --tenant)")
    ] = None,
    agent: Annotated[
        str | None, typer.Option(help="agent identity the client acts as (its writes carry it; trust applies)")
    ] = None,
) -> None:
    """Serve the memory and the agent to an MCP client over stdio (tools, resources; logs go to stderr)."""
    from hopmem.app.mcp import build_server

    server = build_server(_settings(), tenant=tenant, agent=agent)
    with server.handles.memory():  # a bad tenant or agent name fails here, in one sentence, before a client connects
        pass
    try:
        server.run("stdio")
    finally:
        server.handles.close()
