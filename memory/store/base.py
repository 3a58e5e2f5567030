"""What every part of the store builds on: its connection and settings, the audit log, the embedder bookkeeping.

:class:`~hopmem.memory.store.MemoryStore` is composed of small parts, one per responsibility (documents, memory
writes, erasure, reads, lexical search, vector rows), each a class in its own module of this package. Each part
derives from :class:`StoreBase`, which declares the state :class:`~hopmem.memory.store.MemoryStore` sets up and holds
the few helpers more than one part needs, so that every part reads on its own and type-checks.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.memory.errors import StoreError

if TYPE_CHECKING:
    from hopmem.memory.lexical_index import LexicalIndex


class StoreBase:
    """The state shared by the store's parts (set by :class:`~hopmem.memory.store.MemoryStore`'s constructor).

    Attributes:
        path: the database file.
        conn: the store's connection (writes go through :func:`hopmem.memory.db.write_transaction`).
        mmap_mb: memory-mapped reads, in MiB, for this store's connections.
        lexical_pool_factor: see :class:`~hopmem.memory.store.MemoryStore`.
        lexical_backend: ``index`` or ``fts5``.
    """

    path: Path
    conn: sqlite3.Connection
    mmap_mb: int
    lexical_pool_factor: int
    lexical_backend: str
    _bm25_weights: tuple[float, float]
    _lexical: LexicalIndex | None

    def embedder_info(self) -> tuple[str, int] | None:
        """The (name, dim) of the embedder this store's vectors were made with, if any were stored."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return str(data["name"]), int(data["dim"])

    def _check_embedder(self, name: str, dim: int) -> None:
        """Record the embedder on the first vector; refuse vectors of another one (inside the write transaction)."""
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

    def _audit(self, conn: sqlite3.Connection, tenant: str, action: str, detail: dict[str, Any], at: float) -> None:
        """Append one entry to the audit log, inside the caller's transaction."""
        conn.execute(
            "INSERT INTO audit_log (at, tenant, action, detail) VALUES (?, ?, ?, ?)",
            (at, tenant, action, json.dumps(detail)),
        )
