"""The streamable-HTTP transport as an ASGI app, optionally behind API keys, for ``hopmem serve`` to mount.

The SDK's app needs its session manager running (a task group, started by the app's lifespan). Served on its own
(uvicorn on :func:`mcp_http_app`) the lifespan starts it; mounted inside another app, whose server does not run
a mounted app's lifespan, the host enters :meth:`MCPHttpApp.lifespan` in its own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from hopmem.app.mcp.handles import SCOPE_KEY, Identity
from hopmem.app.mcp.server import HopmemMCP, build_server
from hopmem.settings import Settings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
# Maps the bearer token of a request (None when it sent none) to who it acts as, or None to refuse it.
Authenticate = Callable[[str | None], Identity | tuple[str, str | None] | None]


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


class MCPHttpApp:
    """ASGI app: the MCP server's streamable-HTTP app, with the caller's identity put into each request's scope.

    Args:
        server: the MCP server.
        inner: the SDK's Starlette app for ``server``.
        authenticate: maps a request's bearer token to its identity (None refuses it with 401); without it, every
            request acts for the server's default identity.
    """

    def __init__(self, server: HopmemMCP, inner: Any, authenticate: Authenticate | None) -> None:
        self.server = server
        self.inner = inner
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.authenticate is not None:
            found = self.authenticate(_bearer(scope))
            if found is None:
                await _refuse(send)
                return
            scope = {**scope, SCOPE_KEY: Identity(*found)}
        await self.inner(scope, receive, send)

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the session manager (and close the SDK handles after); enter once, from the host app's lifespan."""
        try:
            async with self.server.session_manager.run():
                yield
        finally:
            self.server.handles.close()


async def _refuse(send: Send) -> None:
    body = json.dumps(
        {
            "error": {
                "message": "A valid API key is required (Authorization: Bearer KEY).",
                "type": "authentication_error",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def mcp_http_app(
    settings: Settings,
    *,
    tenant: str | None = None,
    agent: str | None = None,
    authenticate: Authenticate | None = None,
    path: str = "/mcp",
    host: str = "127.0.0.1",
    stateless: bool = False,
) -> MCPHttpApp:
    """The MCP server over streamable HTTP, as an ASGI app.

    Args:
        settings: the store and agent settings.
        tenant, agent: who requests act for when ``authenticate`` is None (default: ``settings.tenant``, the user).
        authenticate: bearer token -> identity (tenant, agent), or None to answer 401; how ``hopmem serve`` puts
            the endpoint behind its API keys.
        path: where the endpoint is inside this app (``"/"`` when the host mounts it at ``/mcp``).
        host: the address the server binds; on loopback the SDK checks Host and Origin (DNS rebinding).
        stateless: no MCP sessions (each request stands alone), for several server workers behind one address.
    """
    server = build_server(settings, tenant=tenant, agent=agent)
    inner = server.streamable_http_app(streamable_http_path=path, host=host, stateless_http=stateless)
    app = MCPHttpApp(server, inner, authenticate)
    # Served on its own, the SDK app's lifespan runs the session manager; ours does that and closes the handles.
    inner.router.lifespan_context = lambda _inner: app.lifespan()
    return app
