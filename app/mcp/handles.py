"""Who an MCP call acts for, and the SDK handles it uses.

The MCP face holds no policy: it maps a connection to a tenant and an agent identity (fixed by ``hopmem mcp
--tenant/--agent`` over stdio, or by the API key of an HTTP request) and calls the SDK, whose engine applies the
trust, quarantine and tenant rules. The handles come from :class:`hopmem.app.handles.HandlePool`: the MCP server's
own, or, mounted in ``hopmem serve``, the server's, so one identity has one open ``Memory`` per process whichever face
it calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from hopmem.app.handles import HandlePool, Identity

if TYPE_CHECKING:
    from hopmem import Agent, Memory
    from hopmem.settings import Settings

__all__ = ["CURRENT", "SCOPE_KEY", "Handles", "Identity"]

# The identity of the MCP request being handled; set by the server around every tool call and resource read.
CURRENT: ContextVar[Identity | None] = ContextVar("hopmem_mcp_identity", default=None)

# Where an HTTP front end (the API-key check in front of the streamable-HTTP app) leaves the caller's identity in
# the ASGI scope; the server reads it from the request of each MCP message.
SCOPE_KEY = "hopmem.identity"


class Handles:
    """The current identity of a call, and its handles from a pool.

    Args:
        settings: the settings handles are opened with.
        default: the identity of calls that carry none (stdio, or HTTP without keys).
        pool: the pool to share (``hopmem serve``'s); None: a pool of this server's own, closed by :meth:`close`.
    """

    def __init__(self, settings: Settings, default: Identity, pool: HandlePool | None = None) -> None:
        self.settings = settings
        self.default = default
        self._owns_pool = pool is None
        self.pool = pool if pool is not None else HandlePool(settings)

    def current(self) -> Identity:
        """The identity of the request being handled, or the default one."""
        return CURRENT.get() or self.default

    @contextmanager
    def memory(self, who: Identity | None = None) -> Iterator[Memory]:
        """The ``Memory`` of ``who`` (default: the current identity), held for this identity alone while in use."""
        with self.pool.memory(who or self.current()) as memory:
            yield memory

    @contextmanager
    def agent(self, who: Identity | None = None) -> Iterator[Agent]:
        """The ``Agent`` of ``who`` (default: the current identity), held like :meth:`memory`."""
        with self.pool.agent(who or self.current()) as agent:
            yield agent

    def close(self) -> None:
        """Close the handles, unless the pool is shared (its owner closes it)."""
        if self._owns_pool:
            self.pool.close()
