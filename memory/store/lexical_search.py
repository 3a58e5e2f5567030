"""Lexical (bm25) search of the store: the in-process index when it can answer, else FTS5 itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hopmem.memory.fts import build_match_query
from hopmem.memory.records import Hit, SearchFilter
from hopmem.memory.sql_filters import filter_sql, require_tenant
from hopmem.memory.store.base import StoreBase

if TYPE_CHECKING:
    from hopmem.memory.lexical_index import LexicalIndex


class LexicalSearch(StoreBase):
    """bm25 over title and content, with the tenant and filters applied in SQL."""

    def search_lexical(self, tenant: str, query: str, k: int, *, filters: SearchFilter | None = None) -> list[Hit]:
        """bm25 over title and content; scores are negated bm25 so that higher is better."""
        require_tenant(tenant)
        match = build_match_query(query)
        if match is None or k <= 0:
            return []
        if self.lexical_backend == "index":
            hits = self.lexical_index.search(tenant, query, k, filters=filters)
            if hits is not None:  # None: a phrase, or inside a transaction; FTS5 answers below
                return hits
        title_w, content_w = self._bm25_weights
        where, params = filter_sql(filters)
        # First the best rows of the whole index, then the tenant and filters on those few: exact whenever at least
        # k of them pass (every passing row outside them scores lower). Else the join over all matches decides.
        pool = int(k) * self.lexical_pool_factor
        rows = self.conn.execute(
            "SELECT m.id AS id, f.bm AS bm FROM"
            " (SELECT rowid AS rid, bm25(memories_fts, ?, ?) AS bm FROM memories_fts"
            "  WHERE memories_fts MATCH ? ORDER BY bm LIMIT ?) f"
            f" JOIN memories m ON m.id = f.rid WHERE m.tenant = ?{where} ORDER BY f.bm, m.id LIMIT ?",
            (title_w, content_w, match, pool, tenant, *params, int(k)),
        ).fetchall()
        if len(rows) < k and self._pool_was_full(match, pool):
            rows = self.conn.execute(
                "SELECT m.id AS id, bm25(memories_fts, ?, ?) AS bm FROM memories_fts"
                " JOIN memories m ON m.id = memories_fts.rowid"
                f" WHERE memories_fts MATCH ? AND m.tenant = ?{where} ORDER BY bm, m.id LIMIT ?",
                (title_w, content_w, match, tenant, *params, int(k)),
            ).fetchall()
        return [Hit(int(r["id"]), -float(r["bm"])) for r in rows]

    @property
    def lexical_index(self) -> LexicalIndex:
        """The in-process lexical index over this store's FTS5 index (made on first use)."""
        if self._lexical is None:
            from hopmem.memory.lexical_index import LexicalIndex

            title_w, content_w = self._bm25_weights
            self._lexical = LexicalIndex(
                self, title_weight=title_w, content_weight=content_w, pool_factor=self.lexical_pool_factor
            )
        return self._lexical

    def _pool_was_full(self, match: str, pool: int) -> bool:
        """Whether more than ``pool`` rows match (only then can the join find rows the pool missed)."""
        row = self.conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)", (match, pool + 1)
        ).fetchone()
        return int(row[0]) > pool
