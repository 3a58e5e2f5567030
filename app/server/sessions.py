"""The open memories and agents of one server process, one of each per principal, used one request at a time.

Each worker process opens its own handles (the store is multi-process safe: WAL, busy timeout, short transactions),
and keeps them per (tenant, agent) so that the embedder, the vector index and the searcher are built once. A handle
holds one SQLite connection, which must not run two transactions at once, so every use takes the handle's lock;
requests of different principals run in parallel.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hopmem import Agent, Memory, Settings
    from hopmem.app.server.auth import Principal


class Sessions:
    """Memories and agents of this process, keyed by principal.

    Args:
        settings: the server's settings; agents use them with ``remember_answers`` as set there.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._memories: dict[tuple[str, str | None], tuple[Memory, threading.Lock]] = {}
        self._agents: dict[tuple[str, str | None], tuple[Agent, threading.Lock]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def memory(self, who: Principal) -> Iterator[Memory]:
        """The principal's memory, held for the duration of the ``with`` block."""
        from hopmem import Memory

        key = (who.tenant, who.agent)
        with self._lock:
            if key not in self._memories:
                self._memories[key] = (
                    Memory(self.settings, tenant=who.tenant, agent=who.agent),
                    threading.Lock(),
                )
            memory, lock = self._memories[key]
        with lock:
            yield memory

    def agent(self, who: Principal) -> tuple[Agent, threading.Lock]:
        """The principal's agent over its own memory handle, and the lock to hold while it runs."""
        from hopmem import Agent, Memory

        key = (who.tenant, who.agent)
        with self._lock:
            if key not in self._agents:
                memory = Memory(self.settings, tenant=who.tenant, agent=who.agent)
                self._agents[key] = (Agent(memory, settings=self.settings), threading.Lock())
            return self._agents[key]

    def close(self) -> None:
        with self._lock:
            for memory, lock in self._memories.values():
                with lock:
                    memory.close()
            for agent, lock in self._agents.values():
                with lock:
                    agent.close()
            self._memories.clear()
            self._agents.clear()
