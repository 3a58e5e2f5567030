"""What the memory engine needs to know, as one plain record the memory layer owns.

The SDK's :class:`hopmem.Settings` is the one configuration object users see; the memory layer may not import it
(the dependency direction is ``sdk -> memory``), so the engine reads this record instead. Its fields carry the
names of the settings they come from, and :meth:`EngineConfig.from_settings` copies them by name, so nothing is
mirrored by hand: a field added here is read from the settings of the same name (a test checks that every field
has one).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hopmem.memory.trust.model import TrustParams


@dataclass(frozen=True)
class EngineConfig:
    """The engine's configuration; every field is the setting of the same name (see ``hopmem.Settings``).

    No field has a default here: the defaults live in the settings alone.
    """

    store_path: Path
    behaviour_path: Path
    checkpoint_path: Path
    tenant: str
    sqlite_busy_timeout_ms: int
    sqlite_mmap_mb: int
    bm25_title_weight: float
    bm25_content_weight: float
    lexical_backend: str
    embedder: str
    embedder_options: dict[str, Any]
    embed_batch_size: int
    vector_backend: str
    qdrant_target: str
    qdrant_collection: str
    fusion: str
    rrf_k: int
    retrieve_depth: int
    chunk_size: int
    chunk_overlap: int
    max_file_bytes: int
    max_content_chars: int
    max_memory_chars: int
    trust_params: TrustParams
    trust_gate: bool
    trust_threshold: float
    trust_ranking: bool
    ltr_enabled: bool
    ltr_min_feedback: int
    ltr_retrain_every: int
    ltr_max_queries: int

    @classmethod
    def from_settings(cls, settings: object, **overrides: Any) -> EngineConfig:
        """The config that ``settings`` implies: each field is the attribute of the same name (a method is called).

        Args:
            settings: any object with an attribute per field (``hopmem.Settings`` in practice).
            overrides: fields to set instead of reading them from ``settings`` (e.g. another ``store_path``).

        Raises:
            AttributeError: when ``settings`` lacks a field; that is a programming error, not a user's.
        """
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            if item.name in overrides:
                values[item.name] = overrides[item.name]
                continue
            value = getattr(settings, item.name)
            values[item.name] = value() if callable(value) else value
        return cls(**values)
