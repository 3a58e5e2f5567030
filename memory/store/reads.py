"""Reading memories back: by id, in batches, by filter; counts and an integrity check."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from hopmem.memory.errors import InputError
from hopmem.memory.records import MemoryRecord, SearchFilter
from hopmem.memory.sql_filters import VISIBLE_SQL, filter_sql, require_tenant
from hopmem.memory.store.base import StoreBase
from hopmem.memory.store.rows import RECORD_SELECT, record_from_row


class MemoryReads(StoreBase):
    """Every read of memory rows filters by tenant inside the SQL and hides quarantined memories unless asked."""

    def get(self, tenant: str, ids: Sequence[int], *, include_quarantined: bool = False) -> list[MemoryRecord]:
        """The memories with these ids that belong to ``tenant``, in the order of ``ids``.

        Quarantined memories are left out unless ``include_quarantined`` (the review path asks for them).
        """
        require_tenant(tenant)
        visible = "" if include_quarantined else f" AND {VISIBLE_SQL}"
        if not ids:
            return []
        rows: dict[int, MemoryRecord] = {}
        unique = list(dict.fromkeys(int(i) for i in ids))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(
                RECORD_SELECT + f" WHERE m.tenant = ? AND m.id IN ({marks}){visible}",
                (tenant, *part),
            ):
                rows[int(row["id"])] = record_from_row(row)
        return [rows[i] for i in unique if i in rows]

    def filtered_ids(self, tenant: str, filters: SearchFilter, *, include_quarantined: bool = False) -> list[int]:
        """The ids of ``tenant``'s memories that pass ``filters`` (dense search restricts itself to these).

        Quarantined memories are left out unless ``include_quarantined`` (erasure must reach them too).
        """
        require_tenant(tenant)
        where, params = filter_sql(filters, visible_only=not include_quarantined)
        sql = f"SELECT m.id FROM memories m WHERE m.tenant = ?{where}"
        return [int(r[0]) for r in self.conn.execute(sql, (tenant, *params))]

    def export(self, tenant: str, *, batch: int = 1000) -> Iterator[MemoryRecord]:
        """Every memory of ``tenant``, by ascending id, read in batches."""
        require_tenant(tenant)
        after = 0
        while True:
            ids = [
                int(r[0])
                for r in self.conn.execute(
                    "SELECT id FROM memories m WHERE tenant = ? AND id > ? AND " + VISIBLE_SQL + " ORDER BY id LIMIT ?",
                    (tenant, after, batch),
                )
            ]
            if not ids:
                return
            yield from self.get(tenant, ids)
            after = ids[-1]

    def recent(self, tenant: str, limit: int) -> list[MemoryRecord]:
        """The ``limit`` most recently written visible memories of ``tenant``, newest first (by id: ids only grow)."""
        require_tenant(tenant)
        if limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}.")
        ids = [
            int(r[0])
            for r in self.conn.execute(
                "SELECT id FROM memories m WHERE tenant = ? AND " + VISIBLE_SQL + " ORDER BY id DESC LIMIT ?",
                (tenant, limit),
            )
        ]
        return self.get(tenant, ids)

    def stats(self, tenant: str) -> dict[str, Any]:
        """Counts of documents, memories and vectors of ``tenant`` (``memories`` counts visible ones only)."""
        require_tenant(tenant)
        one = self.conn.execute
        visible = f"SELECT count(*) FROM memories m WHERE tenant = ? AND {VISIBLE_SQL}"
        return {
            "tenant": tenant,
            "documents": one("SELECT count(*) FROM documents WHERE tenant = ?", (tenant,)).fetchone()[0],
            "memories": one(visible, (tenant,)).fetchone()[0],
            "quarantined": one("SELECT count(*) FROM quarantine WHERE tenant = ?", (tenant,)).fetchone()[0],
            "vectors": one("SELECT count(*) FROM embeddings WHERE tenant = ?", (tenant,)).fetchone()[0],
            "agents": one("SELECT count(*) FROM agents WHERE tenant = ?", (tenant,)).fetchone()[0],
            "by_source_class": {
                str(r[0]): int(r[1])
                for r in one(
                    "SELECT source_class, count(*) FROM memories m WHERE tenant = ? AND "
                    + VISIBLE_SQL
                    + " GROUP BY source_class",
                    (tenant,),
                )
            },
            "embedder": (self.embedder_info() or (None, None))[0],
            "path": str(self.path),
        }

    def integrity_problems(self) -> list[str]:
        """What is out of step between rows, FTS and embeddings (empty when all agree)."""
        problems: list[str] = []
        check = self.conn.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            problems.append(f"integrity_check: {check}")
        try:
            self.conn.execute("INSERT INTO memories_fts (memories_fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError as exc:
            problems.append(f"fts: {exc}")
        orphans = self.conn.execute(
            "SELECT count(*) FROM embeddings e LEFT JOIN memories m ON m.id = e.memory_id WHERE m.id IS NULL"
        ).fetchone()[0]
        if orphans:
            problems.append(f"{orphans} embeddings without a memory")
        return problems
