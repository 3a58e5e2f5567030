"""The memory engine: one tenant's memory with its policy (trust gate, quarantine, corrections, erasure, feedback).

``hopmem.Memory`` is a thin facade that builds a :class:`MemoryEngine` from :class:`hopmem.Settings`; every face
(CLI, HTTP and MCP servers, UI, notebooks) reaches the memory through it, so the rules below hold whatever the face.

Identity: an engine opened with ``agent="planner"`` acts as that agent: every write, update and feedback is that
agent's, and naming another agent in a call is refused. Trust (:mod:`hopmem.memory.trust`) only ever reads identity
from here, never from a memory's metadata. An engine opened without an agent is the user's own handle: its writes,
feedback and reviews are the user's, and it may label writes with an agent id (importing on an agent's behalf): the
text then counts as the agent's for the write gate and for memory trust, while provenance records that the user's
handle wrote it (``"via": "user"``), so that the user changing or erasing it later is no correction of the agent
(:mod:`hopmem.memory.trust.corrections`).

Modules: :mod:`~.config` (what the engine reads from the settings), :mod:`~.core` (components and identity),
:mod:`~.writes`, :mod:`~.reviews` (feedback, erase, trust, quarantine), :mod:`~.reads`, :mod:`~.catalog`
(browse without a query, sources, erase a source), :mod:`~.conversations` (multi-session chats turn by turn: add
and search, over :mod:`~.writes`).
"""

from __future__ import annotations

from hopmem.memory.engine.catalog import CatalogMixin
from hopmem.memory.engine.config import EngineConfig
from hopmem.memory.engine.conversations import ConversationsMixin
from hopmem.memory.engine.reads import ReadsMixin
from hopmem.memory.engine.reviews import ReviewsMixin
from hopmem.memory.trust.gate import WriteBlockedError

__all__ = ["EngineConfig", "MemoryEngine", "WriteBlockedError"]


class MemoryEngine(CatalogMixin, ConversationsMixin, ReviewsMixin, ReadsMixin):
    """One tenant's memory: write, search, update, erase, review and inspect memories and ingested documents.

    Args:
        config: the engine's configuration (:meth:`EngineConfig.from_settings`).
        tenant: the tenant every call acts for (default: ``config.tenant``).
        agent: the agent this handle acts as (its credentials); None is the user's own handle.
    """

    def __repr__(self) -> str:
        s = self.store.stats(self.tenant)
        return (
            f"{type(self).__name__}(path={s['path']!r}, tenant={self.tenant!r}, documents={s['documents']}, "
            f"memories={s['memories']})"
        )
