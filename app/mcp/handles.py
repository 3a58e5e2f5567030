"""Who a call acts for, and the SDK handles (``Memory``, ``Agent``) opened for each identity.

The MCP face holds no policy: it maps a connection to a tenant and an agent identity (fixed by ``hopmem mcp
--tenant/--agent`` over stdio, or by the API key of an HTTP request) and calls the SDK, whose engine applies the
trust, quarantine and tenant rules. One ``Memory`` per identity is kept open for the life of the server, because
opening one loads the embedder and the vector index.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from hopmem import Agent, Memory
    from hopmem.settings import Settings


class Identity(NamedTuple):
    """A tenant and the agent a caller acts as (None: the user's own handle)."""

    tenant: str
    agent: str | None = None


# The identity of the MCP request being handled; set by the server around every tool call and resource read.
CURRENT: ContextVar[Identity | None] = ContextVar("hopmem_mcp_identity", default=None)

# Where an HTTP front end (the API-key check in front of the streamable-HTTP app) leaves the caller's identity in
# the ASGI scope; the server reads it from the request of each MCP message.
SCOPE_KEY = "hopmem.identity"


class Handles:
    """The ``Memory`` (and ``Agent``) of each identity, opened on first use and closed together.

    Every SDK call goes through :meth:`call` under one lock: the tools run on worker threads, and one SQLite
    connection per store is shared by the handles, so calls are serialized rather than interleaved.

    Args:
        settings: the settings every handle is opened with.
        default: the identity of calls that carry none (stdio, or HTTP without keys).
    """

    def __init__(self, settings: Settings, default: Identity) -> None:
        self.settings = settings
        self.default = default
        self.lock = threading.RLock()
        self._memories: dict[Identity, Memory] = {}
        self._agents: dict[Identity, Agent] = {}

    def current(self) -> Identity:
        """The identity of the request being handled, or the default one."""
        return CURRENT.get() or self.default

    def memory(self, who: Identity | None = None) -> Memory:
        """The ``Memory`` of ``who`` (default: the current identity); call it while holding :attr:`lock`."""
        from hopmem import Memory

        who = who or self.current()
        if who not in self._memories:
            self._memories[who] = Memory(self.settings, tenant=who.tenant, agent=who.agent)
        return self._memories[who]

    def agent(self, who: Identity | None = None) -> Agent:
        """The ``Agent`` of ``who`` over that identity's ``Memory``; call it while holding :attr:`lock`."""
        from hopmem import Agent

        who = who or self.current()
        if who not in self._agents:
            self._agents[who] = Agent(self.memory(who), settings=self.settings)
        return self._agents[who]

    def close(self) -> None:
        """Close every handle (an ``Agent`` closes its ``Memory``)."""
        with self.lock:
            for who, agent in self._agents.items():
                agent.close()
                self._memories.pop(who, None)
            for memory in self._memories.values():
                memory.close()
            self._agents.clear()
            self._memories.clear()
