"""Build the FastAPI application of ``hopmem serve``.

:func:`create_app` wires the parts: the key store (:mod:`~.keys`), the per-identity handles
(:mod:`hopmem.app.handles`, shared with /mcp), the limits (:mod:`~.limits`), the error shape (:mod:`~.errors`) and
the routes (:mod:`~.memory_routes`, :mod:`~.chat_routes`), plus ``/health`` and ``/ready``. :func:`app_from_env` is
what each uvicorn worker calls: it reads the settings from ``HOPMEM_*`` variables, which ``hopmem serve`` sets before
it starts the workers.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.routing import Route

from hopmem.app.handles import HandlePool
from hopmem.app.server import chat_routes, memory_routes
from hopmem.app.server.auth import principal
from hopmem.app.server.errors import ApiError, error_response, install_handlers
from hopmem.app.server.limits import BodyLimitMiddleware, RateLimiter
from hopmem.keys import KeyStore, key_path

if TYPE_CHECKING:
    from hopmem import Settings

log = logging.getLogger(__name__)
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServerState:
    """What the routes share in one process (``app.state.hopmem``)."""

    settings: Settings
    keys: KeyStore
    handles: HandlePool
    rate: RateLimiter
    open_local: bool
    ready: bool = False


def create_app(settings: Settings, *, keys: KeyStore | None = None, open_local: bool | None = None) -> FastAPI:
    """The server application over ``settings``.

    Args:
        settings: the configuration (data dir, limits, rate, LLM).
        keys: the key store (default: ``DATA_DIR/keys.sqlite``).
        open_local: serve requests without a key while no key exists (default: when ``server_host`` is loopback).
    """
    state = ServerState(
        settings=settings,
        keys=keys or KeyStore(key_path(settings)),
        handles=HandlePool(settings),
        rate=RateLimiter(settings.server_rate_per_minute),
        open_local=is_loopback(settings.server_host) if open_local is None else open_local,
    )

    # MCP over streamable HTTP at /mcp, behind the same keys (docs/mcp.md); stateless: any worker answers any request.
    from hopmem.app.mcp import mcp_http_app

    mcp = mcp_http_app(
        settings, authenticate=_mcp_identity, host=settings.server_host, stateless=True, pool=state.handles
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with mcp.lifespan():
            yield
        state.handles.close()

    app = FastAPI(
        title="hopmem",
        version=_version(),
        summary="Local-first agentic RAG and memory: an OpenAI-compatible chat endpoint and a memory REST API.",
        description="Every /v1 route takes an API key (`Authorization: Bearer hm_...`, made with `hopmem keys "
        "create`); a key is bound to one tenant and one agent (or the tenant's user). Errors have OpenAI's shape.",
        lifespan=lifespan,
    )
    app.state.hopmem = state
    install_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware, max_body=settings.server_max_body_bytes, max_upload=settings.server_max_upload_bytes
    )
    app.include_router(memory_routes.router)
    app.include_router(chat_routes.router)
    app.router.routes.append(Route("/mcp", mcp, methods=["GET", "POST", "DELETE"], include_in_schema=False))

    @app.get("/health", tags=["health"], summary="Liveness")
    def health() -> dict[str, Any]:
        """The process answers (``pid`` tells the worker processes apart)."""
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/ready", tags=["health"], summary="Readiness: models loaded, store writable", response_model=None)
    def ready(request: Request) -> dict[str, Any] | JSONResponse:
        """200 when the embedding model is loaded and the store is writable; the LLM's state is reported."""
        return _readiness(request.app.state.hopmem)

    return app


def _mcp_identity(request: Request) -> tuple[str, str | None] | JSONResponse:
    """Who an MCP request acts as: the /v1 routes' key check and rate limit, refusals in their error shape."""
    try:
        found = principal(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.code)
    return found.tenant, found.agent


def _readiness(state: ServerState) -> dict[str, Any] | JSONResponse:
    from hopmem import HopmemError
    from hopmem.memory_api import Memory

    settings = state.settings
    try:
        with Memory(settings, tenant=settings.tenant) as memory:
            memory.embedder.embed(["ready"])  # loads the model once per process
        conn = sqlite3.connect(str(settings.store_path), timeout=settings.sqlite_busy_timeout_ms / 1000)
        try:
            conn.execute("BEGIN IMMEDIATE")  # takes the write lock: the file is writable
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except (HopmemError, sqlite3.Error, OSError) as exc:
        return error_response(503, f"Not ready: {str(exc).rstrip('.')}.", "not_ready")
    state.ready = True
    from hopmem.agent_api import Agent

    agent = Agent(settings=settings)
    try:
        problem = chat_routes.llm_problem(agent)
    finally:
        agent.close()
    return {"status": "ready", "store": "writable", "embedder": settings.embedder, "llm": problem or "ok"}


def _version() -> str:
    import hopmem

    return str(hopmem.__version__)


def app_from_env() -> FastAPI:
    """The application of one uvicorn worker, configured from ``HOPMEM_*`` variables (``uvicorn --factory``)."""
    from hopmem import get_settings

    return create_app(get_settings())
