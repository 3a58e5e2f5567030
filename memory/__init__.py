"""hopmem.memory: the SQLite/FTS5 store, embeddings, vector index, hybrid search and fusion.

This layer imports no other part of hopmem, and importing it loads neither torch nor LangGraph: models and
readers are imported inside the functions that need them.
"""

from __future__ import annotations

from hopmem.memory.errors import (
    ConfigError,
    HopmemError,
    IngestError,
    InputError,
    LLMError,
    ModelNotAvailableError,
    StoreError,
)
from hopmem.memory.hybrid import HybridSearcher
from hopmem.memory.records import Hit, MemoryRecord, SearchResult
from hopmem.memory.store import MemoryStore
from hopmem.memory.vectors.exact import ExactVectorIndex

__all__ = [
    "ConfigError",
    "ExactVectorIndex",
    "Hit",
    "HopmemError",
    "HybridSearcher",
    "IngestError",
    "InputError",
    "LLMError",
    "MemoryRecord",
    "MemoryStore",
    "ModelNotAvailableError",
    "SearchResult",
    "StoreError",
]
