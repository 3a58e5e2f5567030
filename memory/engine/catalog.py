"""The catalogue a browsing face shows: memories without a query (filtered, with their trust), the ingested
sources with their chunk counts, and removing a source (through the one erase path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hopmem.memory import validation as check
from hopmem.memory.engine.reviews import ReviewsMixin
from hopmem.memory.errors import InputError
from hopmem.memory.records import EraseReport, MemoryRecord


class CatalogMixin(ReviewsMixin):
    """Browse, sources and erase_source (through :meth:`ReviewsMixin.erase`); see ``MemoryEngine``."""

    def browse(
        self,
        *,
        agent: str | None = None,
        tags: Sequence[str] | None = None,
        source_class: str | Sequence[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        min_trust: float | None = None,
        max_trust: float | None = None,
        limit: int = 50,
    ) -> list[tuple[MemoryRecord, float]]:
        """The newest memories that pass the filters, without a query, each with its trust (as search weighs it).

        The trust bounds apply to a memory's trust (the lowest along its provenance chain, see
        :meth:`memory_trust`), so the memories of a distrusted agent can be listed apart; under a trust bound the
        scan reads at most ``20 * limit`` of the newest rows. ``tags`` keep the memories that have any of them (as in
        :meth:`search`); a face that files memories under tags (the LangGraph store, :mod:`hopmem.integrations`)
        looks them up this way without a query.

        Raises:
            InputError: for a limit outside 1..1000, a trust bound that is no number, or a bad filter.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InputError(f"limit must be an integer from 1 to 1000, not {limit!r}.")
        for name, bound in (("min_trust", min_trust), ("max_trust", max_trust)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
                raise InputError(f"{name} must be a number from 0 to 1, not {bound!r}.")
        filters = check.search_filter(agent=agent, tags_=tags, source_classes=source_class, since=since, until=until)
        bounded = min_trust is not None or max_trust is not None
        ids = self.store.recent_ids(self.tenant, filters, limit=limit * 20 if bounded else limit)
        trusts = self.trust.memory_trusts(self.tenant, ids) if ids else {}
        low = float("-inf") if min_trust is None else float(min_trust)
        high = float("inf") if max_trust is None else float(max_trust)
        kept = [i for i in ids if low <= trusts.get(i, 1.0) <= high][:limit]
        return [(record, trusts.get(record.id, 1.0)) for record in self.store.get(self.tenant, kept)]

    def sources(self) -> list[dict[str, Any]]:
        """The ingested documents of this tenant, newest first: ``document_id``, ``source``, ``title``, ``chunks``
        (chunk memories stored now), ``n_chunks`` (what the ingest wrote) and ``created_at``."""
        return self.store.list_documents(self.tenant)

    def erase_source(self, source: str) -> EraseReport:
        """Remove an ingested document: every chunk of ``source``, everywhere it lives (the one erase path).

        Raises:
            InputError: when this tenant holds no document ``source`` (see :meth:`sources`).
        """
        if not isinstance(source, str) or not source:
            raise InputError("Name the source to remove (its path, as Memory.sources lists it).")
        ids = self.store.document_memory_ids(self.tenant, source)
        if not ids:
            raise InputError(f"There is no document {source!r} in tenant {self.tenant!r}; see Memory.sources.")
        return self.erase(ids)
