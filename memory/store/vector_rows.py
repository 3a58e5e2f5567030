"""The stored vectors, read for the derived vector indexes, and the epoch that tells them they are stale."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hopmem.memory.sql_filters import require_tenant
from hopmem.memory.store.base import StoreBase

if TYPE_CHECKING:
    from numpy.typing import NDArray


class VectorRows(StoreBase):
    """Reads of the ``embeddings`` table by tenant: every vector index (:mod:`hopmem.memory.vectors`) loads these."""

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
