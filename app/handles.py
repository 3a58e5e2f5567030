"""The SDK handles a server process keeps open for its callers, one ``Memory`` and one ``Agent`` per identity.

Both network faces (``hopmem serve`` and the MCP server, also when MCP is mounted inside ``hopmem serve``) share one
pool per process. Opening a ``Memory`` builds its searcher and loads the tenant's vectors, so handles are kept between
requests; a handle holds one SQLite connection, which must not run two transactions at once, so each use holds the
handle's lock, and the calls of one identity run one at a time while different identities run side by side.

The pool is bounded: beyond ``limit`` identities, the least recently used one that nobody is using is closed (it is
reopened on its next request). The agent gets a ``Memory`` of its own, so a long chat does not hold up the same
identity's memory calls.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from hopmem import Agent, Memory
    from hopmem.settings import Settings

log = logging.getLogger(__name__)


class Identity(NamedTuple):
    """A tenant and the agent a caller acts as (None: the user's own handle)."""

    tenant: str
    agent: str | None = None


@dataclass
class _Entry:
    memory: Memory | None = None
    agent: Agent | None = None
    memory_lock: threading.Lock = field(default_factory=threading.Lock)
    agent_lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0  # leases handed out and not yet returned; an entry in use is never closed

    def close(self) -> None:
        if self.agent is not None:
            self.agent.close()  # closes the agent's own Memory
        if self.memory is not None:
            self.memory.close()
        self.agent = self.memory = None


class HandlePool:
    """``Memory`` and ``Agent`` handles per identity, opened on first use, at most ``limit`` identities kept open.

    Args:
        settings: the settings every handle is opened with.
        limit: identities kept open at once (default ``settings.server_max_handles``).
    """

    def __init__(self, settings: Settings, limit: int | None = None) -> None:
        self.settings = settings
        self.limit = limit if limit is not None else settings.server_max_handles
        if self.limit < 1:
            raise ValueError(f"the handle pool needs a limit of at least 1, got {self.limit}")
        self._guard = threading.Lock()
        self._entries: OrderedDict[Identity, _Entry] = OrderedDict()
        self.opened = 0  # handles opened over the pool's life (a reopened identity counts again)

    def __len__(self) -> int:
        with self._guard:
            return len(self._entries)

    @contextmanager
    def _lease(self, who: Identity) -> Iterator[_Entry]:
        with self._guard:
            entry = self._entries.get(who)
            if entry is None:
                entry = self._entries[who] = _Entry()
            self._entries.move_to_end(who)
            entry.users += 1
            idle = [k for k, e in self._entries.items() if e.users == 0]
            evicted = [self._entries.pop(k) for k in idle[: max(0, len(self._entries) - self.limit)]]
        for old in evicted:
            log.info("closing the idle handles of one identity (pool limit %d)", self.limit)
            old.close()
        try:
            yield entry
        finally:
            with self._guard:
                entry.users -= 1

    @contextmanager
    def memory(self, who: Identity) -> Iterator[Memory]:
        """The ``Memory`` of ``who``, held for this identity alone while the ``with`` block runs."""
        from hopmem import Memory

        with self._lease(who) as entry, entry.memory_lock:
            if entry.memory is None:
                entry.memory = Memory(self.settings, tenant=who.tenant, agent=who.agent)
                self.opened += 1
            yield entry.memory

    @contextmanager
    def agent(self, who: Identity) -> Iterator[Agent]:
        """The ``Agent`` of ``who`` (over a ``Memory`` of its own), held like :meth:`memory`."""
        from hopmem import Agent, Memory

        with self._lease(who) as entry, entry.agent_lock:
            if entry.agent is None:
                memory = Memory(self.settings, tenant=who.tenant, agent=who.agent)
                entry.agent = Agent(memory, settings=self.settings)
                self.opened += 1
            yield entry.agent

    def close(self) -> None:
        """Close every handle; waits for the ones in use."""
        with self._guard:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            with entry.memory_lock, entry.agent_lock:
                entry.close()
