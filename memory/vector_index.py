"""The exact in-process vector index, derived from the embeddings stored in SQLite.

It keeps one normalised matrix per tenant and refreshes it before each search: new rows (ids above the last one
seen) are appended, and any removal (the store's vector epoch moved) triggers a full reload. That makes it safe
when several processes write the same file.
"""

from __future__ import annotations

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

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._tenants: dict[str, _TenantMatrix] = {}

    def refresh(self, tenant: str) -> _TenantMatrix:
        """Bring the tenant's matrix in step with SQLite."""
        require_tenant(tenant)
        epoch, max_id, count = self.store.vector_state(tenant)
        cached = self._tenants.get(tenant)
        if cached is None or cached.epoch != epoch or max_id < cached.max_id:
            cached = _TenantMatrix(epoch=epoch)
            self._tenants[tenant] = cached
        if max_id > cached.max_id or len(cached.ids) != count:
            ids, vectors = self.store.vectors_after(tenant, cached.max_id)
            if len(ids):
                cached.ids = np.concatenate([cached.ids, ids]) if len(cached.ids) else ids
                cached.matrix = np.vstack([cached.matrix, vectors]) if len(cached.matrix) else vectors
                cached.max_id = int(cached.ids[-1])
            if len(cached.ids) != count:  # a concurrent delete raced us: start over next time
                cached.epoch = -1
        return cached

    def search(self, tenant: str, vector: NDArray[np.float32], k: int) -> list[Hit]:
        """The ``k`` nearest memories of ``tenant`` by cosine similarity (vectors are unit length)."""
        state = self.refresh(tenant)
        if k <= 0 or not len(state.ids):
            return []
        scores = state.matrix @ np.asarray(vector, dtype=np.float32).reshape(-1)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(int(state.ids[i]), float(scores[i])) for i in top]

    def __len__(self) -> int:
        return sum(len(t.ids) for t in self._tenants.values())
