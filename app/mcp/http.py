"""The streamable-HTTP transport as an ASGI app, optionally behind API keys, for ``hopmem serve`` to route to.

The SDK's app needs its session manager running (a task group, started by the app's lifespan). Served on its own
(uvicorn on :func:`mcp_http_app`) the lifespan starts it; routed to from another app, whose server does not run
this app's lifespan, the host enters :meth:`MCPHttpApp.lifespan` in its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hopmem.app.handles import HandlePool
from hopmem.app.mcp.handles import SCOPE_KEY, Identity
from hopmem.app.mcp.server import HopmemMCP, build_server
from hopmem.settings import Settings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
# Maps a request to who it acts as (tenant, agent); or to a response to send instead (the host's own 401 or 429),
# or None for the default 401.
Authenticate = Callable[[Request], Identity | tuple[str, str | None] | Response | None]
REFUSED = {
    "error": {
        "message": "A valid API key is required (Authorization: Bearer KEY).",
        "type": "invalid_request_error",
        "code": "invalid_key",
    }
}


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class MCPHttpApp:
    """ASGI app: the MCP server's streamable-HTTP app, with the caller's identity put into each request's scope.

    Args:
        server: the MCP server.
        inner: the SDK's Starlette app for ``server``.
        authenticate: maps a request to its identity, or to the response that refuses it (None: a plain 401);
            without it, every request acts for the server's default identity.
    """

    def __init__(self, server: HopmemMCP, inner: Any, authenticate: Authenticate | None) -> None:
        self.server = server
        self.inner = inner
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.authenticate is not None:
            found = self.authenticate(Request(scope))
            if found is None or isinstance(found, Response):
                refusal = found or JSONResponse(REFUSED, status_code=401, headers={"WWW-Authenticate": "Bearer"})
                await refusal(scope, receive, send)
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


def mcp_http_app(
    settings: Settings,
    *,
    tenant: str | None = None,
    agent: str | None = None,
    authenticate: Authenticate | None = None,
    path: str = "/mcp",
    host: str = "127.0.0.1",
    stateless: bool = False,
    pool: HandlePool | None = None,
) -> MCPHttpApp:
    """The MCP server over streamable HTTP, as an ASGI app.

    Args:
        settings: the store and agent settings.
        tenant, agent: who requests act for when ``authenticate`` is None (default: ``settings.tenant``, the user).
        authenticate: request -> identity (tenant, agent), or the response refusing it (None: a plain 401); how
            ``hopmem serve`` puts the endpoint behind its API keys (see :func:`bearer_token`).
        path: the endpoint's path; a host app routes that same path to this app (``add_route(path, app)``).
        host: the address the server binds; on loopback the SDK checks Host and Origin (DNS rebinding).
        stateless: no MCP sessions (each request stands alone), for several server workers behind one address.
        pool: the host server's handles, shared so an identity has one open memory per process (None: own ones).
    """
    server = build_server(settings, tenant=tenant, agent=agent, pool=pool)
    inner = server.streamable_http_app(streamable_http_path=path, host=host, stateless_http=stateless)
    app = MCPHttpApp(server, inner, authenticate)
    # Served on its own, the SDK app's lifespan runs the session manager; ours does that and closes the handles.
    inner.router.lifespan_context = lambda _inner: app.lifespan()
    return app
