"""Open a vector index backend by name."""

from __future__ import annotations

from hopmem.memory.errors import ConfigError
from hopmem.memory.store import MemoryStore
from hopmem.memory.vectors.base import VectorIndex

VECTOR_BACKENDS: tuple[str, ...] = ("exact", "qdrant")


def open_index(
    store: MemoryStore, backend: str, *, qdrant_location: str = ":memory:", qdrant_collection: str = "hopmem"
) -> VectorIndex:
    """The ``backend`` index over ``store``; a qdrant index is reconciled with SQLite as it opens."""
    if backend == "exact":
        from hopmem.memory.vectors.exact import ExactVectorIndex

        return ExactVectorIndex(store)
    if backend == "qdrant":
        from hopmem.memory.vectors.qdrant import QdrantVectorIndex

        return QdrantVectorIndex(store, qdrant_location, collection=qdrant_collection)
    raise ConfigError(f"Unknown vector backend {backend!r}; use one of {', '.join(VECTOR_BACKENDS)}.")
