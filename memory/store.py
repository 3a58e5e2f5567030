"""The SQLite store: the source of truth for documents, memories, embeddings and the audit log.

Every read path takes the tenant as a required argument and filters by it inside the SQL; an empty tenant is an
error, never "all tenants".
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.memory.db import connect, write_transaction
from hopmem.memory.errors import InputError, StoreError
from hopmem.memory.fts import build_match_query
from hopmem.memory.records import DocumentInput, DocumentWrite, Hit, MemoryRecord
from hopmem.memory.schema import migrate

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)


def require_tenant(tenant: object) -> str:
    """Validate a tenant id: a non-empty string. There is no wildcard tenant."""
    if not isinstance(tenant, str) or not tenant.strip():
        raise InputError("A tenant is required (a non-empty string); pass tenant=... or set HOPMEM_TENANT.")
    return tenant


class MemoryStore:
    """One SQLite file holding documents, memories, FTS5 index, embeddings and audit log.

    Args:
        path: the database file (created with its folder when missing).
        busy_timeout_ms: how long a writer waits for another process's lock.
        title_weight: bm25 weight of the title column.
        content_weight: bm25 weight of the content column.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = 10_000,
        title_weight: float = 2.0,
        content_weight: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.conn = connect(self.path, busy_timeout_ms=busy_timeout_ms)
        self._bm25_weights = (float(title_weight), float(content_weight))
        try:
            migrate(self.conn)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(
                f"The store {self.path} could not be prepared ({exc}); it may be corrupt or read-only."
            ) from exc
        except RuntimeError as exc:
            self.conn.close()
            raise StoreError(f"The store {self.path} was written by a newer hopmem ({exc}); upgrade hopmem.") from exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- embedder bookkeeping -------------------------------------------------------------------------------

    def embedder_info(self) -> tuple[str, int] | None:
        """The (name, dim) of the embedder this store's vectors were made with, if any were stored."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return str(data["name"]), int(data["dim"])

    def _check_embedder(self, name: str, dim: int) -> None:
        info = self.embedder_info()
        if info is None:
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('embedder', ?)",
                (json.dumps({"name": name, "dim": dim}),),
            )
        elif info != (name, dim):
            raise StoreError(
                f"The store {self.path} holds vectors of embedder {info[0]!r} (dim {info[1]}), not {name!r}; "
                "use that embedder or a new data directory."
            )

    # ---- writes ---------------------------------------------------------------------------------------------

    def add_documents(
        self,
        tenant: str,
        documents: Sequence[DocumentInput],
        vectors: Sequence[NDArray[np.float32]] | None,
        *,
        embedder: tuple[str, int] | None,
    ) -> list[DocumentWrite]:
        """Store documents with their chunks and chunk vectors, all in one transaction.

        A document whose source is already stored with the same content hash is left as it is; one whose content
        changed is replaced (its old chunks, FTS rows and vectors removed) in the same transaction.

        Args:
            tenant: the owner.
            documents: what to store.
            vectors: one array per document, of shape (len(document.chunks), dim); None stores no vectors
                (a lexical-only store, as bm25 evaluation uses).
            embedder: (name, dim) of the embedder that made the vectors; None with ``vectors=None``.
        """
        require_tenant(tenant)
        if (vectors is None) != (embedder is None):
            raise ValueError("vectors and embedder go together")
        if vectors is not None and len(documents) != len(vectors):
            raise ValueError("documents and vectors differ in length")
        now = time.time()
        results: list[DocumentWrite] = []
        with write_transaction(self.conn) as conn:
            if embedder is not None:
                self._check_embedder(*embedder)
            for position, doc in enumerate(documents):
                vecs = None if vectors is None else vectors[position]
                if vecs is not None and embedder is not None and vecs.shape != (len(doc.chunks), embedder[1]):
                    raise ValueError(f"vectors of {doc.source} have shape {vecs.shape}")
                old = conn.execute(
                    "SELECT id, content_hash FROM documents WHERE tenant = ? AND source = ?",
                    (tenant, doc.source),
                ).fetchone()
                if old is not None and old["content_hash"] == doc.content_hash:
                    results.append(DocumentWrite(doc.source, "unchanged", int(old["id"]), 0))
                    continue
                status = "added"
                if old is not None:
                    conn.execute("DELETE FROM memories WHERE document_id = ?", (old["id"],))
                    conn.execute("DELETE FROM documents WHERE id = ?", (old["id"],))
                    status = "replaced"
                cur = conn.execute(
                    "INSERT INTO documents (tenant, source, external_id, title, content_hash, n_chunks, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (tenant, doc.source, doc.external_id, doc.title, doc.content_hash, len(doc.chunks), now),
                )
                doc_id = int(cur.lastrowid or 0)
                for index, chunk in enumerate(doc.chunks):
                    mem = conn.execute(
                        "INSERT INTO memories (tenant, document_id, chunk_index, title, content, content_hash,"
                        " source_class, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'document', ?, ?)",
                        (tenant, doc_id, index, doc.title, chunk, _hash(chunk), now, now),
                    )
                    if vecs is not None and embedder is not None:
                        conn.execute(
                            "INSERT INTO embeddings (memory_id, tenant, model, dim, vector) VALUES (?, ?, ?, ?, ?)",
                            (
                                mem.lastrowid,
                                tenant,
                                embedder[0],
                                embedder[1],
                                np.asarray(vecs[index], np.float32).tobytes(),
                            ),
                        )
                conn.execute(
                    "INSERT INTO audit_log (at, tenant, action, detail) VALUES (?, ?, ?, ?)",
                    (
                        now,
                        tenant,
                        f"document.{status}",
                        json.dumps({"document_id": doc_id, "chunks": len(doc.chunks)}),
                    ),
                )
                results.append(DocumentWrite(doc.source, status, doc_id, len(doc.chunks)))
        return results

    def document_hash(self, tenant: str, source: str) -> str | None:
        """The content hash stored for ``source``, or None when it is not stored."""
        row = self.conn.execute(
            "SELECT content_hash FROM documents WHERE tenant = ? AND source = ?",
            (require_tenant(tenant), source),
        ).fetchone()
        return None if row is None else str(row[0])

    # ---- reads ----------------------------------------------------------------------------------------------

    def get(self, tenant: str, ids: Sequence[int]) -> list[MemoryRecord]:
        """The memories with these ids that belong to ``tenant``, in the order of ``ids``."""
        require_tenant(tenant)
        if not ids:
            return []
        rows: dict[int, MemoryRecord] = {}
        unique = list(dict.fromkeys(int(i) for i in ids))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(
                "SELECT m.*, d.source AS source, d.external_id AS external_id FROM memories m"
                " LEFT JOIN documents d ON d.id = m.document_id"
                f" WHERE m.tenant = ? AND m.id IN ({marks})",
                (tenant, *part),
            ):
                rows[int(row["id"])] = _record(row)
        return [rows[i] for i in unique if i in rows]

    def search_lexical(self, tenant: str, query: str, k: int) -> list[Hit]:
        """bm25 over title and content; scores are negated bm25 so that higher is better."""
        require_tenant(tenant)
        match = build_match_query(query)
        if match is None or k <= 0:
            return []
        title_w, content_w = self._bm25_weights
        rows = self.conn.execute(
            "SELECT m.id AS id, bm25(memories_fts, ?, ?) AS bm FROM memories_fts"
            " JOIN memories m ON m.id = memories_fts.rowid"
            " WHERE memories_fts MATCH ? AND m.tenant = ? ORDER BY bm LIMIT ?",
            (title_w, content_w, match, tenant, int(k)),
        ).fetchall()
        return [Hit(int(r["id"]), -float(r["bm"])) for r in rows]

    def vectors_after(self, tenant: str, after_id: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The (ids, vectors) of ``tenant`` whose memory id is above ``after_id``, ordered by id."""
        require_tenant(tenant)
        rows = self.conn.execute(
            "SELECT memory_id, dim, vector FROM embeddings WHERE tenant = ? AND memory_id > ? ORDER BY memory_id",
            (tenant, int(after_id)),
        ).fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), int(rows[0][1]))
        return ids, matrix

    def vector_state(self, tenant: str) -> tuple[int, int, int]:
        """(epoch, max id, count) of ``tenant``'s vectors: a cheap signal that a derived index is stale."""
        require_tenant(tenant)
        epoch = int(self.conn.execute("SELECT value FROM meta WHERE key = 'vector_epoch'").fetchone()[0])
        row = self.conn.execute(
            "SELECT coalesce(max(memory_id), 0), count(*) FROM embeddings WHERE tenant = ?", (tenant,)
        ).fetchone()
        return epoch, int(row[0]), int(row[1])

    def stats(self, tenant: str) -> dict[str, Any]:
        """Counts of documents, memories and vectors of ``tenant``."""
        require_tenant(tenant)
        one = self.conn.execute
        return {
            "tenant": tenant,
            "documents": one("SELECT count(*) FROM documents WHERE tenant = ?", (tenant,)).fetchone()[0],
            "memories": one("SELECT count(*) FROM memories WHERE tenant = ?", (tenant,)).fetchone()[0],
            "vectors": one("SELECT count(*) FROM embeddings WHERE tenant = ?", (tenant,)).fetchone()[0],
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


def _hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _record(row: sqlite3.Row) -> MemoryRecord:
    return MemoryRecord(
        id=int(row["id"]),
        tenant=row["tenant"],
        title=row["title"],
        content=row["content"],
        source_class=row["source_class"],
        document_id=row["document_id"],
        chunk_index=row["chunk_index"],
        source=row["source"],
        external_id=row["external_id"],
        tags=json.loads(row["tags"]),
        metadata=json.loads(row["metadata"]),
        agent_id=row["agent_id"],
        created_at=float(row["created_at"]),
    )
