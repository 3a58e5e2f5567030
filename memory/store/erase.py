"""Erasing rows from the store: memories with their FTS rows and vectors, emptied documents, whole tenants.

This is the SQLite half of erasure; :mod:`hopmem.memory.erasure` drives it and reaches the other copies (vector
indexes, checkpoints, behavioural data).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

from hopmem.memory.db import scrub_files, write_transaction
from hopmem.memory.records import EraseReport, MemoryRecord
from hopmem.memory.sql_filters import require_tenant
from hopmem.memory.store.base import StoreBase
from hopmem.memory.store.rows import RECORD_SELECT, id_summary, record_from_row

EraseHook = Callable[[sqlite3.Connection, list[MemoryRecord], float], None]
"""Called inside the transaction of :meth:`MemoryStore.erase_rows`, before the rows go, with the memories about to be
erased and the time: bookkeeping that must commit with the erase or not at all. An exception rolls the erase back."""


class StoreErasure(StoreBase):
    """Deleting memories and documents, and purging erased text from the file."""

    def erase_rows(
        self, tenant: str, ids: Sequence[int], *, reason: str, hook: EraseHook | None = None
    ) -> tuple[EraseReport, list[str]]:
        """Delete memories of ``tenant`` (with their FTS rows and vectors) and documents left without chunks.

        Returns the counts and the erased contents. The contents are returned, never stored, so that the caller can
        find copies in other files (conversation checkpoints). The audit log records the ids and counts only.

        Args:
            hook: bookkeeping run inside the same transaction, before the rows go (see :data:`EraseHook`).
        """
        require_tenant(tenant)
        wanted = sorted({int(i) for i in ids})
        erased: list[int] = []
        contents: list[str] = []
        documents = 0
        vectors = 0
        with write_transaction(self.conn) as conn:
            touched_docs: set[int] = set()
            if hook is not None:
                now = time.time()
                before: list[MemoryRecord] = []
                for start in range(0, len(wanted), 500):
                    part = wanted[start : start + 500]
                    marks = ",".join("?" * len(part))
                    before.extend(
                        record_from_row(row)
                        for row in conn.execute(
                            RECORD_SELECT + f" WHERE m.tenant = ? AND m.id IN ({marks})",
                            (tenant, *part),
                        )
                    )
                hook(conn, before, now)
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = conn.execute(
                    f"SELECT id, document_id, content FROM memories WHERE tenant = ? AND id IN ({marks})",
                    (tenant, *part),
                ).fetchall()
                for row in rows:
                    erased.append(int(row["id"]))
                    contents.append(row["content"])
                    if row["document_id"] is not None:
                        touched_docs.add(int(row["document_id"]))
                vectors += conn.execute(
                    f"SELECT count(*) FROM embeddings WHERE tenant = ? AND memory_id IN ({marks})", (tenant, *part)
                ).fetchone()[0]
                conn.execute(f"DELETE FROM memories WHERE tenant = ? AND id IN ({marks})", (tenant, *part))
            for doc_id in sorted(touched_docs):
                left = conn.execute("SELECT count(*) FROM memories WHERE document_id = ?", (doc_id,)).fetchone()[0]
                if not left:
                    conn.execute("DELETE FROM documents WHERE id = ? AND tenant = ?", (doc_id, tenant))
                    documents += 1
            self._audit(
                conn,
                tenant,
                "memory.erase",
                {"ids": id_summary(erased), "count": len(erased), "documents": documents, "reason": reason},
                time.time(),
            )
        if self._lexical is not None:
            self._lexical.refresh_if_used()  # the erased text leaves the in-process lexical index now
        return EraseReport(memories=len(erased), documents=documents, vectors=vectors, ids=erased), contents

    def contents_of(self, tenant: str, ids: Sequence[int] | None = None) -> dict[int, str]:
        """The content of each memory of ``tenant`` among ``ids`` (all of the tenant's when None)."""
        require_tenant(tenant)
        if ids is None:
            return {
                int(r[0]): r[1]
                for r in self.conn.execute("SELECT id, content FROM memories WHERE tenant = ?", (tenant,))
            }
        out: dict[int, str] = {}
        unique = sorted({int(i) for i in ids})
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(
                f"SELECT id, content FROM memories WHERE tenant = ? AND id IN ({marks})", (tenant, *part)
            ):
                out[int(row[0])] = row[1]
        return out

    def erase_tenant_rows(self, tenant: str) -> tuple[EraseReport, list[str]]:
        """Erase every memory and document of ``tenant``, and its agents."""
        require_tenant(tenant)
        ids = [int(r[0]) for r in self.conn.execute("SELECT id FROM memories WHERE tenant = ?", (tenant,))]
        report, contents = self.erase_rows(tenant, ids, reason="tenant")
        with write_transaction(self.conn) as conn:
            report.documents += conn.execute("DELETE FROM documents WHERE tenant = ?", (tenant,)).rowcount
            conn.execute("DELETE FROM agents WHERE tenant = ?", (tenant,))
            conn.execute("DELETE FROM trust_agents WHERE tenant = ?", (tenant,))
            conn.execute("DELETE FROM trust_signals WHERE tenant = ?", (tenant,))
        return report, contents

    def scrub(self) -> bool:
        """Purge erased text from the FTS index's segments and from the files (see :func:`scrub_files`)."""
        with write_transaction(self.conn) as conn:
            conn.execute("INSERT INTO memories_fts (memories_fts) VALUES ('optimize')")
        return scrub_files(self.conn)
