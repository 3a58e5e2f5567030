"""Who a call acts for, and the SDK handles (``Memory``, ``Agent``) opened for each identity.

The MCP face holds no policy: it maps a connection to a tenant and an agent identity (fixed by ``hopmem mcp
--tenant/--agent`` over stdio, or by the API key of an HTTP request) and calls the SDK, whose engine applies the
trust, quarantine and tenant rules. One ``Memory`` per identity is kept open for the life of the server, because
opening one loads the embedder and the vector index.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
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

    The tools run on worker threads, and one identity's handles share one SQLite connection, so the calls of one
    identity are serialized (one lock each); different identities (API keys) have their own handles and run side by
    side, each on its own connection to the multi-process safe store.

    Args:
        settings: the settings every handle is opened with.
        default: the identity of calls that carry none (stdio, or HTTP without keys).
    """

    def __init__(self, settings: Settings, default: Identity) -> None:
        self.settings = settings
        self.default = default
        self._guard = threading.Lock()
        self._locks: dict[Identity, threading.Lock] = {}
        self._memories: dict[Identity, Memory] = {}
        self._agents: dict[Identity, Agent] = {}

    def current(self) -> Identity:
        """The identity of the request being handled, or the default one."""
        return CURRENT.get() or self.default

    def _open(self, who: Identity) -> tuple[Memory, threading.Lock]:
        from hopmem import Memory

        with self._guard:
            if who not in self._memories:
                self._memories[who] = Memory(self.settings, tenant=who.tenant, agent=who.agent)
                self._locks[who] = threading.Lock()
            return self._memories[who], self._locks[who]

    @contextmanager
    def memory(self, who: Identity | None = None) -> Iterator[Memory]:
        """The ``Memory`` of ``who`` (default: the current identity), held for this identity alone while in use."""
        memory, lock = self._open(who or self.current())
        with lock:
            yield memory

    @contextmanager
    def agent(self, who: Identity | None = None) -> Iterator[Agent]:
        """The ``Agent`` of ``who`` over that identity's ``Memory``, held like :meth:`memory`."""
        from hopmem import Agent

        who = who or self.current()
        memory, lock = self._open(who)
        with lock:
            if who not in self._agents:
                self._agents[who] = Agent(memory, settings=self.settings)
            yield self._agents[who]

    def close(self) -> None:
        """Close every handle (an ``Agent`` closes its ``Memory``)."""
        with self._guard:
            for who, memory in self._memories.items():
                with self._locks[who]:
                    agent = self._agents.pop(who, None)
                    agent.close() if agent is not None else memory.close()
            self._memories.clear()
            self._locks.clear()
