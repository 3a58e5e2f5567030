"""Who a request acts as: its API key mapped to a :class:`Principal` (tenant, agent, key id).

Keys come as ``Authorization: Bearer hm_...`` (what the ``openai`` client sends) or ``X-API-Key``. Without any active
key in the key file, a server bound to loopback serves requests without a key as the user of ``settings.tenant``
(local, single-user mode, like the CLI); once one key exists, every request needs a valid one. A server on another
address refuses to start without keys (:mod:`hopmem.app.serve_cli`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from hopmem.app.handles import Identity
from hopmem.app.server.errors import ApiError, error_response


@dataclass(frozen=True)
class Principal:
    """The identity a request acts under: its tenant, its agent (None: the tenant's user) and the key's id."""

    tenant: str
    agent: str | None
    key_id: str

    @property
    def identity(self) -> Identity:
        """The (tenant, agent) pair the handle pool keys on."""
        return Identity(self.tenant, self.agent)


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return header.strip()
    return request.headers.get("x-api-key") or None


def principal(request: Request) -> Principal:
    """The FastAPI dependency every ``/v1`` route takes: 401 without a valid key, 429 over the key's rate."""
    return identify(request.app.state.hopmem, request)


def key_authenticator(state: Any) -> Callable[[Request], tuple[str, str | None] | Response]:
    """The same key check for an app mounted in the server (the MCP endpoint): the request's (tenant, agent), or
    the error response (401, 429) in OpenAI's shape."""

    def authenticate(request: Request) -> tuple[str, str | None] | Response:
        try:
            who = identify(state, request)
        except ApiError as exc:
            return error_response(exc.status, exc.message, exc.code)
        return who.tenant, who.agent

    return authenticate


def identify(state: Any, request: Request) -> Principal:
    """The principal of ``request`` under the server ``state`` (its key store, rate limiter, settings).

    Raises:
        ApiError: 401 without a valid key (outside keyless local mode), 429 over the key's rate.
    """
    key = _presented_key(request)
    if key is None:
        if state.open_local and state.keys.active_count() == 0:
            found = Principal(state.settings.tenant, None, "local")
        else:
            raise ApiError(401, "This server needs an API key; send it as 'Authorization: Bearer hm_...'.", "no_key")
    else:
        info = state.keys.verify(key)
        if info is None:
            raise ApiError(
                401, "The API key is not valid or was revoked; ask for a new one (hopmem keys create).", "invalid_key"
            )
        found = Principal(info.tenant, info.agent, info.id)
    wait = state.rate.allow(found.key_id)
    if wait > 0:
        raise ApiError(429, f"Too many requests for this key; retry in {math.ceil(wait)} s.", "rate_limited")
    return found
