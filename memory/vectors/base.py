"""The one small interface every vector index backend implements, and the shared helpers they use.

A vector index is *derived*: SQLite's ``embeddings`` table is the source of truth, and any backend can be rebuilt
from it (``hopmem memory reindex``). Every backend must pass ``tests/memory/test_vector_conformance.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from hopmem.memory.records import Hit


@runtime_checkable
class VectorIndex(Protocol):
    """Nearest-neighbour search over one store's embeddings, per tenant.

    Contract:
        * ``search`` returns at most ``k`` hits of ``tenant`` only, best first, score = cosine similarity
          (vectors are unit length); ties break by ascending memory id.
        * ``ids`` restricts the search to those memory ids (used by filters); ids of other tenants never match.
        * Before answering, ``search`` brings the index in step with SQLite (rows written or erased by this or
          another process), at least as far as the backend can see them.
        * ``delete`` removes vectors right away (the erasure path calls it after the SQLite rows are gone).
        * ``rebuild`` drops what the backend holds and reloads every tenant from SQLite; returns the vector count.
        * ``reconcile`` compares the backend with SQLite and repairs it (adds missing, drops extra vectors);
          returns the number of vectors it changed. Opening a store calls it.
    """

    name: str

    def search(
        self, tenant: str, vector: NDArray[np.float32], k: int, *, ids: Sequence[int] | None = None
    ) -> list[Hit]: ...

    def delete(self, tenant: str, ids: Sequence[int]) -> None: ...

    def ids(self, tenant: str) -> set[int]: ...

    def rebuild(self) -> int: ...

    def reconcile(self) -> int: ...

    def close(self) -> None: ...
