"""``hopmem.Memory``: the user's memory, opened from :class:`Settings`.

A thin facade: the behaviour and its rules (trust gate, quarantine, corrections, erasure, feedback) live in the
memory engine (:mod:`hopmem.memory.engine`); this class only turns the settings into the engine's configuration,
so that users and every face open a memory with one object they already know.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hopmem.displays import SearchResults, TrustTable
from hopmem.memory.engine import EngineConfig, MemoryEngine
from hopmem.settings import Settings, get_settings


class Memory(MemoryEngine):
    """The user's memory: write, search, update, erase and inspect memories and ingested documents.

    Every call acts for one tenant, fixed when the object is made. See :class:`hopmem.memory.engine.MemoryEngine`
    for the operations and the identity rules.

    Args:
        settings: configuration; read from the environment when omitted.
        tenant: the tenant every call acts for (default: ``settings.tenant``).
        path: the store file (default: ``settings.store_path``).
        agent: the agent this handle acts as (its credentials); None is the user's own handle.

    Examples:
        A memory in a fresh folder; search returns :class:`~hopmem.displays.SearchResults` (a table in a notebook):

        >>> import tempfile, hopmem
        >>> settings = hopmem.get_settings(data_dir=tempfile.mkdtemp(), llm_backend="none", reranker="none")
        >>> memory = hopmem.Memory(settings)
        >>> memory.add("The ferry to the island leaves at nine from pier 4.", title="Ferry").title
        'Ferry'
        >>> _ = memory.add("Bins go out on Monday night.", title="Bins")
        >>> results = memory.search("when does the ferry leave", k=2)
        >>> [r.record.title for r in results]
        ['Ferry', 'Bins']
        >>> results
        <SearchResults for 'when does the ferry leave': 2 memories; best #1 (...)>
        >>> memory.trust_of()  # no agent has written yet
        <TrustTable of 0 agents: >
        >>> memory.close()
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tenant: str | None = None,
        path: Path | None = None,
        agent: str | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        overrides = {"store_path": Path(path)} if path is not None else {}
        super().__init__(EngineConfig.from_settings(self.settings, **overrides), tenant=tenant, agent=agent)

    def search(self, query: str, **options: Any) -> SearchResults:
        """:meth:`MemoryEngine.search`'s results as a :class:`~hopmem.displays.SearchResults` (a list that renders as
        a table in a notebook); the same arguments."""
        results = SearchResults(super().search(query, **options))
        results.query = query
        return results

    def search_conversation(self, query: str, **options: Any) -> SearchResults:
        """:meth:`MemoryEngine.search_conversation`'s results as a :class:`~hopmem.displays.SearchResults` (a table in
        a notebook); the same arguments."""
        results = SearchResults(super().search_conversation(query, **options))
        results.query = query
        return results

    def trust_of(self, agent: str | None = None) -> TrustTable:
        """:meth:`MemoryEngine.trust_of` as a :class:`~hopmem.displays.TrustTable` (a list shown with a bar per agent
        in a notebook); the same argument."""
        return TrustTable(super().trust_of(agent))
