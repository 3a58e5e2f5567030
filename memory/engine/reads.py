"""Reads: get, search, export and the store's statistics; every read is confined to the engine's tenant."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from hopmem.memory import validation as check
from hopmem.memory.engine.core import EngineCore
from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import SEARCH_MODES, HybridSearcher
from hopmem.memory.records import MemoryRecord, SearchFilter, SearchResult


class ReadsMixin(EngineCore):
    """Get, search, export, stats and reindex; see :class:`~hopmem.memory.engine.MemoryEngine`."""

    def reindex(self) -> int:
        """Rebuild the vector index from SQLite; returns how many vectors it holds."""
        return self.index.rebuild()

    def get_many(self, ids: Sequence[int]) -> list[MemoryRecord]:
        """The memories of this tenant among ``ids`` (unknown ids are left out)."""
        return self.store.get(self.tenant, [check.memory_id(i) for i in ids])

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        agent: str | None = None,
        tags: Sequence[str] | None = None,
        source_class: str | Sequence[str] | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SearchResult]:
        """The top ``k`` memories for ``query`` (``mode``: lexical, dense or hybrid), optionally filtered."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
            raise InputError(f"k must be an integer from 1 to 1000, not {k!r}.")
        if mode not in SEARCH_MODES:
            raise InputError(f"Unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}.")
        filters: SearchFilter = check.search_filter(
            agent=agent, tags_=tags, source_classes=source_class, since=since, until=until
        )
        if mode == "lexical":
            searcher = HybridSearcher(
                self.store,
                None,
                fusion=self.config.fusion,
                depth=self.config.retrieve_depth,
                trust=self.trust if self.config.trust_ranking else None,
            )
            return searcher.search(self.tenant, query, k=k, mode=mode, filters=filters)
        return self.searcher.search(self.tenant, query, k=k, mode=mode, filters=filters)

    def export(self) -> Iterator[MemoryRecord]:
        """Every memory of this tenant, oldest first."""
        return self.store.export(self.tenant)

    def recent(self, limit: int = 10) -> list[MemoryRecord]:
        """The ``limit`` most recently written memories of this tenant, newest first (one indexed query)."""
        return self.store.recent(self.tenant, limit)

    def stats(self) -> dict[str, Any]:
        data = self.store.stats(self.tenant)
        data["vector_backend"] = self.config.vector_backend
        if self.config.behaviour_path.exists():
            data["feedback"] = self.behaviour.count(self.tenant)
        return data
