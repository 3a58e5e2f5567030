"""The SQLite store: the source of truth for documents, memories, embeddings and the audit log.

Every read path takes the tenant as a required argument and filters by it inside the SQL; an empty tenant is an
error, never "all tenants" (:mod:`hopmem.memory.sql_filters` holds those rules).

:class:`MemoryStore` opens the file; what it does is written in one part per responsibility, each a class in its own
module of this package (all of them derive from :class:`~hopmem.memory.store.base.StoreBase`, the shared state):

* :mod:`~hopmem.memory.store.documents`: documents and their chunks (ingest);
* :mod:`~hopmem.memory.store.writes`: adding and updating memories, access counts (with :data:`WriteHook`,
  :data:`UpdateHook`);
* :mod:`~hopmem.memory.store.erase`: erasing memories, documents and tenants (with :data:`EraseHook`);
* :mod:`~hopmem.memory.store.reads`: reading memories back, counts, the integrity check;
* :mod:`~hopmem.memory.store.lexical_search`: bm25 search (the in-process index or FTS5);
* :mod:`~hopmem.memory.store.catalog`: listings for browsing faces (documents with chunk counts, newest memories);
* :mod:`~hopmem.memory.store.vector_rows`: the stored vectors and their epoch, for the vector indexes;
* :mod:`~hopmem.memory.store.rows`: row helpers they share.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hopmem.memory.db import connect
from hopmem.memory.errors import InputError, StoreError
from hopmem.memory.schema import migrate
from hopmem.memory.sql_filters import VISIBLE_SQL, require_tenant
from hopmem.memory.store.catalog import StoreCatalog
from hopmem.memory.store.documents import DocumentWrites
from hopmem.memory.store.erase import EraseHook, StoreErasure
from hopmem.memory.store.lexical_search import LexicalSearch
from hopmem.memory.store.vector_rows import VectorRows
from hopmem.memory.store.writes import MemoryWrites, UpdateHook, WriteHook

__all__ = ["VISIBLE_SQL", "EraseHook", "MemoryStore", "UpdateHook", "WriteHook", "require_tenant"]


class MemoryStore(DocumentWrites, MemoryWrites, StoreErasure, LexicalSearch, VectorRows, StoreCatalog):
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
        self._lexical = None
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
