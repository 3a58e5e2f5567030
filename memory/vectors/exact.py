"""The exact in-process vector index, derived from the embeddings stored in SQLite (the default backend).

It keeps one normalised matrix per tenant and refreshes it before each search: new rows (ids above the last one
seen) are appended, and any removal (the store's vector epoch moved) triggers a full reload. That makes it safe
when several processes write the same file: every process reads SQLite, none holds state another must know of.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hopmem.memory.records import Hit
from hopmem.memory.store import MemoryStore, require_tenant

if TYPE_CHECKING:
    from numpy.typing import NDArray


@dataclass
class _TenantMatrix:
    epoch: int = -1
    max_id: int = 0
    ids: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    matrix: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))


class ExactVectorIndex:
    """Brute-force inner-product search over unit vectors (exact; fast enough to ~10^5 vectors on a CPU)."""

    name = "exact"

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._tenants: dict[str, _TenantMatrix] = {}

    def refresh(self, tenant: str) -> _TenantMatrix:
        """Bring the tenant's matrix in step with SQLite."""
        require_tenant(tenant)
        epoch, max_id = self.store.vector_marker(tenant)
        cached = self._tenants.get(tenant)
        if cached is None or cached.epoch != epoch or max_id < cached.max_id:
            cached = _TenantMatrix(epoch=epoch)
            self._tenants[tenant] = cached
        if max_id > cached.max_id:
            # A removal between the marker and this read moves the epoch past ours: the next refresh reloads.
            ids, vectors = self.store.vectors_after(tenant, cached.max_id)
            if len(ids):
                cached.ids = np.concatenate([cached.ids, ids]) if len(cached.ids) else ids
                cached.matrix = np.vstack([cached.matrix, vectors]) if len(cached.matrix) else vectors
                cached.max_id = int(cached.ids[-1])
        return cached

    def search(
        self, tenant: str, vector: NDArray[np.float32], k: int, *, ids: Sequence[int] | None = None
    ) -> list[Hit]:
        """The ``k`` nearest memories of ``tenant`` by cosine similarity (vectors are unit length)."""
        state = self.refresh(tenant)
        if k <= 0 or not len(state.ids):
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if ids is not None:
            rows = np.flatnonzero(np.isin(state.ids, np.fromiter(ids, dtype=np.int64)))
            if not len(rows):
                return []
            scores = state.matrix[rows] @ query
            row_ids = state.ids[rows]
        else:
            scores = state.matrix @ query
            row_ids = state.ids
        k = min(k, len(scores))
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
        top = np.flatnonzero(scores >= kth)  # every row tied with the k-th competes, so ties break by id
        top = top[np.lexsort((row_ids[top], -scores[top]))][:k]
        return [Hit(int(row_ids[i]), float(scores[i])) for i in top]

    def delete(self, tenant: str, ids: Sequence[int]) -> None:
        """Drop cached rows now; SQLite's vector epoch makes every other process reload anyway."""
        cached = self._tenants.get(require_tenant(tenant))
        if cached is None or not len(ids):
            return
        keep = ~np.isin(cached.ids, np.fromiter(ids, dtype=np.int64))
        cached.ids, cached.matrix = cached.ids[keep], cached.matrix[keep]
        cached.epoch = -1

    def ids(self, tenant: str) -> set[int]:
        return {int(i) for i in self.refresh(tenant).ids}

    def rebuild(self) -> int:
        self._tenants.clear()
        return sum(len(self.refresh(t).ids) for t in self.store.vector_tenants())

    def reconcile(self) -> int:
        """Nothing to repair: the matrix is re-read from SQLite whenever it is stale."""
        for tenant in list(self._tenants):
            self.refresh(tenant)
        return 0

    def close(self) -> None:
        self._tenants.clear()

    def __len__(self) -> int:
        return sum(len(t.ids) for t in self._tenants.values())
