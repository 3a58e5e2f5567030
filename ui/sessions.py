"""The open memories and agents of the UI process: one memory handle per identity, one agent per identity and
session settings, each used by one event at a time.

A handle holds one SQLite connection, which must not run two transactions at once, so every use takes the handle's
lock; sessions of different identities run in parallel. Agents are kept per (identity, settings in effect) so that a
session that changes the LLM or the reranker gets its own agent while the others keep theirs; the oldest agents are
closed past :data:`MAX_AGENTS`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hopmem.ui.identity import Identity

if TYPE_CHECKING:
    from hopmem import Agent, Memory, Settings

MAX_AGENTS = 8

SESSION_SETTINGS = (
    "llm_backend",
    "llm_model",
    "llm_base_url",
    "reranker",
    "treehop_hops",
    "decompose",
    "top_k",
)
"""The settings a UI session may change for itself (the Settings tab); the others are the server's."""


def session_settings(base: Settings, overrides: Mapping[str, Any] | None) -> Settings:
    """``base`` with a session's overrides, validated like any settings.

    Raises:
        ConfigError: when an override is invalid (one sentence naming it).
        InputError: when it names a setting a session may not change.
    """
    from hopmem import InputError, get_settings

    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(SESSION_SETTINGS))
    if unknown:
        raise InputError(f"A session may not change {', '.join(unknown)}; set it where the UI is started.")
    if not overrides:
        return base
    return get_settings(**{**base.model_dump(), **overrides})


class Handles:
    """Memories and agents of this process, keyed by identity (and, for agents, by the session settings).

    Args:
        settings: the settings the UI was started with.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._memories: dict[Identity, tuple[Memory, threading.Lock]] = {}
        self._agents: OrderedDict[tuple[Identity, tuple[tuple[str, Any], ...]], tuple[Agent, threading.Lock]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    @contextmanager
    def memory(self, who: Identity) -> Iterator[Memory]:
        """The identity's memory, held for the duration of the ``with`` block."""
        from hopmem import Memory

        with self._lock:
            if who not in self._memories:
                self._memories[who] = (Memory(self.settings, tenant=who.tenant, agent=who.agent), threading.Lock())
            memory, lock = self._memories[who]
        with lock:
            yield memory

    def agent(self, who: Identity, overrides: Mapping[str, Any] | None = None) -> tuple[Agent, threading.Lock]:
        """The agent of ``who`` under the session's settings, and the lock to hold while it runs."""
        from hopmem import Agent, Memory

        settings = session_settings(self.settings, overrides)
        key = (who, tuple(sorted((overrides or {}).items())))
        with self._lock:
            if key in self._agents:
                self._agents.move_to_end(key)
                return self._agents[key]
            memory = Memory(settings, tenant=who.tenant, agent=who.agent)
            self._agents[key] = (Agent(memory, settings=settings), threading.Lock())
            while len(self._agents) > MAX_AGENTS:
                _, (old, lock) = self._agents.popitem(last=False)
                with lock:
                    old.close()
            return self._agents[key]

    def close(self) -> None:
        """Close every handle (at shutdown)."""
        with self._lock:
            for memory, lock in self._memories.values():
                with lock:
                    memory.close()
            for agent, lock in self._agents.values():
                with lock:
                    agent.close()
            self._memories.clear()
            self._agents.clear()
