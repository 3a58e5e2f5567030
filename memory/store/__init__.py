"""The SQLite store: the source of truth for documents, memories, embeddings and the audit log.

Every read path takes the tenant as a required argument and filters by it inside the SQL; an empty tenant is an
error, never "all tenants".
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.memory.db import connect, scrub_files, write_transaction
from hopmem.memory.errors import InputError, StoreError
from hopmem.memory.fts import build_match_query
from hopmem.memory.records import (
    AddResult,
    DocumentInput,
    DocumentWrite,
    EraseReport,
    Hit,
    MemoryInput,
    MemoryRecord,
    SearchFilter,
)
from hopmem.memory.schema import migrate

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hopmem.memory.lexical_index import LexicalIndex

log = logging.getLogger(__name__)

VISIBLE_SQL = "m.quarantined = 0"
"""The condition on ``memories m`` that every read path applies: quarantined memories (held for review by the
trust gate, :mod:`hopmem.memory.trust.gate`) are invisible until approved. It is part of :func:`_filter_sql`, so any
search that takes its filter SQL honours it; a read path that does not must add it itself."""

WriteHook = Callable[[sqlite3.Connection, list[AddResult], float], None]
"""Called inside the write transaction of :meth:`MemoryStore.add_memories` with its results and time: bookkeeping
that must commit with the write or not at all (the trust signals). An exception rolls the whole write back."""

UpdateHook = Callable[[sqlite3.Connection, MemoryRecord, float], None]
"""Called inside the transaction of :meth:`MemoryStore.update_memory` with the memory as it was before the change and
the time: bookkeeping that must commit with the change or not at all. An exception rolls the change back."""

EraseHook = Callable[[sqlite3.Connection, list[MemoryRecord], float], None]
"""Called inside the transaction of :meth:`MemoryStore.erase_rows`, before the rows go, with the memories about to be
erased and the time: bookkeeping that must commit with the erase or not at all. An exception rolls the erase back."""


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
        lexical_pool_factor: lexical search first ranks ``k * factor`` rows of the whole index, then applies the
            tenant and filters to them; only when fewer than ``k`` pass does it rank every match of the tenant.
        lexical_backend: ``index`` ranks with the in-process index derived from FTS5
            (:mod:`hopmem.memory.lexical_index`: the same bm25, without FTS5's per-row cost); ``fts5`` asks FTS5.
        mmap_mb: memory-mapped reads of the file, in MiB, for this store's connections (0: off; see
            :func:`hopmem.memory.db.connect`).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = 10_000,
        title_weight: float = 2.0,
        content_weight: float = 1.0,
        lexical_pool_factor: int = 4,
        lexical_backend: str = "index",
        mmap_mb: int = 0,
    ) -> None:
        self.path = Path(path)
        self.mmap_mb = mmap_mb
        self.conn = connect(self.path, busy_timeout_ms=busy_timeout_ms, mmap_mb=mmap_mb)
        self._bm25_weights = (float(title_weight), float(content_weight))
        self.lexical_pool_factor = lexical_pool_factor
        if lexical_backend not in ("index", "fts5"):
            self.conn.close()
            raise InputError(f"Unknown lexical backend {lexical_backend!r}; use 'index' or 'fts5'.")
        self.lexical_backend = lexical_backend
        self._lexical: LexicalIndex | None = None
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
        if self._lexical is not None:
            self._lexical.close()
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
                provenance = json.dumps([{"at": now, "action": "ingest", "source": doc.source}], ensure_ascii=False)
                for index, chunk in enumerate(doc.chunks):
                    mem = conn.execute(
                        "INSERT INTO memories (tenant, document_id, chunk_index, title, content, content_hash,"
                        " source_class, created_at, updated_at, provenance)"
                        " VALUES (?, ?, ?, ?, ?, ?, 'document', ?, ?, ?)",
                        (tenant, doc_id, index, doc.title, chunk, _hash(chunk), now, now, provenance),
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

    def add_memories(
        self,
        tenant: str,
        items: Sequence[MemoryInput],
        vectors: NDArray[np.float32] | None,
        *,
        embedder: tuple[str, int] | None,
        hold: Sequence[str | None] | None = None,
        hook: WriteHook | None = None,
    ) -> list[AddResult]:
        """Write memories (already validated) and their vectors in one transaction.

        A memory whose content is already stored for ``tenant`` (same content hash, any source class other than
        ``document``) is not written again: its result is ``duplicate`` with the stored id. Duplicates inside
        ``items`` collapse the same way.

        Args:
            hold: per item, None to store it visible, or the reason to store it quarantined (invisible, its vector
                kept in the quarantine table instead of ``embeddings``, so no vector index sees it).
            hook: bookkeeping run inside the same transaction (see :data:`WriteHook`).
        """
        if hold is not None and len(hold) != len(items):
            raise ValueError("hold and items differ in length")
        require_tenant(tenant)
        if (vectors is None) != (embedder is None):
            raise ValueError("vectors and embedder go together")
        if vectors is not None and embedder is not None and vectors.shape != (len(items), embedder[1]):
            raise ValueError(f"vectors have shape {vectors.shape}, expected ({len(items)}, {embedder[1]})")
        now = time.time()
        results: list[AddResult] = []
        with write_transaction(self.conn) as conn:
            if embedder is not None:
                self._check_embedder(*embedder)
            for position, item in enumerate(items):
                digest = _hash(item.content)
                old = conn.execute(
                    "SELECT id, quarantined FROM memories WHERE tenant = ? AND content_hash = ?"
                    " AND source_class != 'document' LIMIT 1",
                    (tenant, digest),
                ).fetchone()
                if old is not None:
                    results.append(AddResult(int(old[0]), "duplicate", bool(old[1])))
                    continue
                reason = None if hold is None else hold[position]
                event: dict[str, Any] = {
                    "at": now,
                    "action": "add",
                    "agent": item.agent_id,
                    "source_class": item.source_class,
                }
                if item.on_behalf and item.agent_id is not None:
                    event["via"] = "user"  # the user's handle wrote it on the agent's behalf
                if item.source:
                    event["source"] = item.source
                if item.derived_from:
                    event["derived_from"] = list(item.derived_from)
                if item.parent_trust is not None:
                    event["parent_trust"] = round(float(item.parent_trust), 6)
                cur = conn.execute(
                    "INSERT INTO memories (tenant, title, content, tags, metadata, content_hash, source_class,"
                    " agent_id, importance, created_at, updated_at, provenance, quarantined)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        tenant,
                        item.title,
                        item.content,
                        json.dumps(list(item.tags), ensure_ascii=False),
                        json.dumps(item.metadata, ensure_ascii=False),
                        digest,
                        item.source_class,
                        item.agent_id,
                        item.importance,
                        now,
                        now,
                        json.dumps([event], ensure_ascii=False),
                        int(reason is not None),
                    ),
                )
                memory_id = int(cur.lastrowid or 0)
                if reason is not None:
                    vector = None if vectors is None else np.asarray(vectors[position], np.float32).tobytes()
                    conn.execute(
                        "INSERT INTO quarantine (memory_id, tenant, agent_id, reason, at, model, dim, vector)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            memory_id,
                            tenant,
                            item.agent_id,
                            reason,
                            now,
                            None if embedder is None else embedder[0],
                            None if embedder is None else embedder[1],
                            vector,
                        ),
                    )
                elif vectors is not None and embedder is not None:
                    conn.execute(
                        "INSERT INTO embeddings (memory_id, tenant, model, dim, vector) VALUES (?, ?, ?, ?, ?)",
                        (memory_id, tenant, *embedder, np.asarray(vectors[position], np.float32).tobytes()),
                    )
                if item.agent_id is not None:
                    conn.execute(
                        "INSERT INTO agents (tenant, id, created_at, last_seen, writes) VALUES (?, ?, ?, ?, 1)"
                        " ON CONFLICT (tenant, id) DO UPDATE SET last_seen = excluded.last_seen, writes = writes + 1",
                        (tenant, item.agent_id, now, now),
                    )
                results.append(AddResult(memory_id, "added", reason is not None))
            added = [r.id for r in results if r.status == "added"]
            if added:
                self._audit(conn, tenant, "memory.add", {"ids": _id_summary(added), "count": len(added)}, now)
            held = [r.id for r in results if r.status == "added" and r.quarantined]
            if held:
                self._audit(conn, tenant, "memory.quarantine", {"ids": _id_summary(held), "count": len(held)}, now)
            if hook is not None:
                hook(conn, results, now)
        return results

    def update_memory(
        self,
        tenant: str,
        memory_id: int,
        changes: dict[str, Any],
        vector: NDArray[np.float32] | None,
        *,
        embedder: tuple[str, int] | None,
        agent_id: str | None,
        reason: str | None = None,
        on_behalf: bool = False,
        hook: UpdateHook | None = None,
    ) -> MemoryRecord:
        """Change fields of one memory and append the change to its provenance chain, in one transaction.

        ``changes`` holds validated values for any of: content, title, tags, metadata, importance. A change of the
        embedded text (content or title) comes with its new ``vector`` when the store keeps vectors; the vector of a
        quarantined memory stays in the quarantine table, out of every vector index.

        Args:
            agent_id: who made the change (None: the user).
            on_behalf: the user's handle made the change, labelled with ``agent_id`` (provenance ``"via": "user"``).
            hook: bookkeeping run inside the same transaction (see :data:`UpdateHook`).

        Raises:
            InputError: when ``memory_id`` is not a memory of ``tenant``.
        """
        require_tenant(tenant)
        allowed = {"content", "title", "tags", "metadata", "importance"}
        if not changes or not set(changes) <= allowed:
            raise InputError(f"Nothing to update; change any of: {', '.join(sorted(allowed))}.")
        now = time.time()
        with write_transaction(self.conn) as conn:
            row = conn.execute(
                "SELECT m.*, d.source AS source, d.external_id AS external_id FROM memories m"
                " LEFT JOIN documents d ON d.id = m.document_id WHERE m.tenant = ? AND m.id = ?",
                (tenant, memory_id),
            ).fetchone()
            if row is None:
                raise InputError(f"There is no memory {memory_id} in tenant {tenant!r}; check the id.")
            event: dict[str, Any] = {"at": now, "action": "update", "agent": agent_id, "fields": sorted(changes)}
            if on_behalf and agent_id is not None:
                event["via"] = "user"
            if reason:
                event["reason"] = reason
            columns: dict[str, Any] = {}
            for key, value in changes.items():
                if key in ("tags", "metadata"):
                    columns[key] = json.dumps(list(value) if key == "tags" else value, ensure_ascii=False)
                else:
                    columns[key] = value
            if "content" in changes:
                columns["content_hash"] = _hash(changes["content"])
                event["previous_hash"] = row["content_hash"]
            chain = json.loads(row["provenance"])
            chain.append(event)
            columns["provenance"] = json.dumps(chain, ensure_ascii=False)
            columns["updated_at"] = now
            assignments = ", ".join(f"{name} = ?" for name in columns)
            conn.execute(
                f"UPDATE memories SET {assignments} WHERE tenant = ? AND id = ?",
                (*columns.values(), tenant, memory_id),
            )
            if vector is not None and embedder is not None:
                self._check_embedder(*embedder)
                blob = np.asarray(vector, np.float32).tobytes()
                if row["quarantined"]:
                    conn.execute(
                        "UPDATE quarantine SET model = ?, dim = ?, vector = ? WHERE tenant = ? AND memory_id = ?",
                        (embedder[0], embedder[1], blob, tenant, memory_id),
                    )
                else:
                    conn.execute(
                        "INSERT INTO embeddings (memory_id, tenant, model, dim, vector) VALUES (?, ?, ?, ?, ?)"
                        " ON CONFLICT (memory_id) DO UPDATE SET vector = excluded.vector, model = excluded.model,"
                        " dim = excluded.dim",
                        (memory_id, tenant, embedder[0], embedder[1], blob),
                    )
            self._audit(conn, tenant, "memory.update", {"id": memory_id, "fields": sorted(changes)}, now)
            if hook is not None:
                hook(conn, _record(row), now)
        return self.get(tenant, [memory_id], include_quarantined=True)[0]

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
                        _record(row)
                        for row in conn.execute(
                            "SELECT m.*, d.source AS source, d.external_id AS external_id FROM memories m"
                            f" LEFT JOIN documents d ON d.id = m.document_id WHERE m.tenant = ? AND m.id IN ({marks})",
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
                {"ids": _id_summary(erased), "count": len(erased), "documents": documents, "reason": reason},
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

    def _audit(self, conn: sqlite3.Connection, tenant: str, action: str, detail: dict[str, Any], at: float) -> None:
        conn.execute(
            "INSERT INTO audit_log (at, tenant, action, detail) VALUES (?, ?, ?, ?)",
            (at, tenant, action, json.dumps(detail)),
        )

    def document_hash(self, tenant: str, source: str) -> str | None:
        """The content hash stored for ``source``, or None when it is not stored."""
        row = self.conn.execute(
            "SELECT content_hash FROM documents WHERE tenant = ? AND source = ?",
            (require_tenant(tenant), source),
        ).fetchone()
        return None if row is None else str(row[0])

    # ---- reads ----------------------------------------------------------------------------------------------

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
                "SELECT m.*, d.source AS source, d.external_id AS external_id FROM memories m"
                " LEFT JOIN documents d ON d.id = m.document_id"
                f" WHERE m.tenant = ? AND m.id IN ({marks}){visible}",
                (tenant, *part),
            ):
                rows[int(row["id"])] = _record(row)
        return [rows[i] for i in unique if i in rows]

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
        where, params = _filter_sql(filters)
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

    def filtered_ids(self, tenant: str, filters: SearchFilter, *, include_quarantined: bool = False) -> list[int]:
        """The ids of ``tenant``'s memories that pass ``filters`` (dense search restricts itself to these).

        Quarantined memories are left out unless ``include_quarantined`` (erasure must reach them too).
        """
        require_tenant(tenant)
        where, params = _filter_sql(filters, visible_only=not include_quarantined)
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

    def touch(self, tenant: str, ids: Sequence[int]) -> None:
        """Count an access of each memory (``access_count``, ``last_accessed``), in one short transaction."""
        require_tenant(tenant)
        if not ids:
            return
        now = time.time()
        with write_transaction(self.conn) as conn:
            conn.executemany(
                "UPDATE memories SET access_count = access_count + 1, last_accessed = ? WHERE tenant = ? AND id = ?",
                [(now, tenant, int(i)) for i in ids],
            )

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

    def vectors_by_ids(self, tenant: str, ids: Sequence[int]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The (ids, vectors) of ``tenant`` among ``ids`` that have a vector, ordered by id."""
        require_tenant(tenant)
        rows: list[sqlite3.Row] = []
        unique = sorted({int(i) for i in ids})
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            rows.extend(
                self.conn.execute(
                    f"SELECT memory_id, dim, vector FROM embeddings WHERE tenant = ? AND memory_id IN ({marks})"
                    " ORDER BY memory_id",
                    (tenant, *part),
                ).fetchall()
            )
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        out_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), int(rows[0][1]))
        return out_ids, matrix

    def vector_ids(self, tenant: str) -> set[int]:
        """The memory ids of ``tenant`` that have a stored vector."""
        require_tenant(tenant)
        return {int(r[0]) for r in self.conn.execute("SELECT memory_id FROM embeddings WHERE tenant = ?", (tenant,))}

    def vector_tenants(self) -> list[str]:
        """Every tenant that has at least one stored vector (for rebuilding derived indexes)."""
        return [str(r[0]) for r in self.conn.execute("SELECT DISTINCT tenant FROM embeddings ORDER BY tenant")]

    def vector_marker(self, tenant: str) -> tuple[int, int]:
        """(epoch, max id) of ``tenant``'s vectors, read in one statement in O(log n).

        Writers are serialised and ids only grow, so rows above the max id are all a reader has not seen, unless
        something was removed or rewritten, which moves the epoch.
        """
        require_tenant(tenant)
        row = self.conn.execute(
            "SELECT (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'vector_epoch'),"
            " (SELECT coalesce(max(memory_id), 0) FROM embeddings WHERE tenant = ?)",
            (tenant,),
        ).fetchone()
        return int(row[0]), int(row[1])

    def vector_state(self, tenant: str) -> tuple[int, int, int]:
        """(epoch, max id, count) of ``tenant``'s vectors: a cheap signal that a derived index is stale."""
        require_tenant(tenant)
        epoch = int(self.conn.execute("SELECT value FROM meta WHERE key = 'vector_epoch'").fetchone()[0])
        row = self.conn.execute(
            "SELECT coalesce(max(memory_id), 0), count(*) FROM embeddings WHERE tenant = ?", (tenant,)
        ).fetchone()
        return epoch, int(row[0]), int(row[1])

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
        updated_at=float(row["updated_at"]),
        last_accessed=None if row["last_accessed"] is None else float(row["last_accessed"]),
        access_count=int(row["access_count"]),
        importance=float(row["importance"]),
        content_hash=row["content_hash"],
        provenance=json.loads(row["provenance"]),
        quarantined=bool(row["quarantined"]),
    )


def _filter_sql(filters: SearchFilter | None, *, visible_only: bool = True) -> tuple[str, list[Any]]:
    """SQL conditions on ``memories m`` for ``filters`` (prefixed with AND), and their parameters.

    Unless ``visible_only`` is False, the conditions include :data:`VISIBLE_SQL` (quarantined memories are hidden).
    """
    parts: list[str] = [VISIBLE_SQL] if visible_only else []
    params: list[Any] = []
    if filters is None or filters.empty:
        return "".join(f" AND {p}" for p in parts), params
    if filters.agent_id is not None:
        parts.append("m.agent_id = ?")
        params.append(filters.agent_id)
    if filters.source_classes:
        parts.append(f"m.source_class IN ({','.join('?' * len(filters.source_classes))})")
        params.extend(filters.source_classes)
    if filters.tags:
        parts.append(f"EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value IN ({','.join('?' * len(filters.tags))}))")
        params.extend(filters.tags)
    if filters.since is not None:
        parts.append("m.created_at >= ?")
        params.append(filters.since)
    if filters.until is not None:
        parts.append("m.created_at <= ?")
        params.append(filters.until)
    return "".join(f" AND {p}" for p in parts), params


def _id_summary(ids: Sequence[int]) -> list[int] | dict[str, int]:
    """Ids for the audit log: the list when short, else first/last/count (the log must stay small)."""
    if len(ids) <= 100:
        return list(ids)
    return {"first": min(ids), "last": max(ids), "count": len(ids)}
