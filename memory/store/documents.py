"""Documents in the store: ingest writes a document with its chunks and their vectors in one transaction."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hopmem.memory.db import write_transaction
from hopmem.memory.records import DocumentInput, DocumentWrite
from hopmem.memory.sql_filters import require_tenant
from hopmem.memory.store.base import StoreBase
from hopmem.memory.store.rows import content_hash

if TYPE_CHECKING:
    from numpy.typing import NDArray


class DocumentWrites(StoreBase):
    """Writing documents (as chunk memories) and asking what is stored of one source."""

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
                        (tenant, doc_id, index, doc.title, chunk, content_hash(chunk), now, now, provenance),
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
