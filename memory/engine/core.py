"""The engine's components, opened on first use, and the identity every call acts under.

Split from the operations (:mod:`~hopmem.memory.engine.writes`, :mod:`~hopmem.memory.engine.reviews`,
:mod:`~hopmem.memory.engine.reads`) so that each file holds one kind of change; they all extend :class:`EngineCore`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Self

from hopmem.memory import validation as check
from hopmem.memory.behaviour import BehaviourStore
from hopmem.memory.embeddings import Embedder, load_embedder
from hopmem.memory.engine.config import EngineConfig
from hopmem.memory.erasure import Eraser
from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import HybridSearcher
from hopmem.memory.ltr import LearnedRanker
from hopmem.memory.records import MemoryRecord
from hopmem.memory.store import MemoryStore, require_tenant
from hopmem.memory.trust.model import TrustModel
from hopmem.memory.vectors.base import VectorIndex
from hopmem.memory.vectors.registry import open_index

log = logging.getLogger(__name__)


class EngineCore:
    """The store of one tenant and the parts built on it: embedder, vector index, searcher, trust, feedback.

    Args:
        config: the engine's configuration (:meth:`EngineConfig.from_settings`).
        tenant: the tenant every call acts for (default: ``config.tenant``).
        agent: the agent this handle acts as (its credentials); None is the user's own handle.
    """

    def __init__(self, config: EngineConfig, *, tenant: str | None = None, agent: str | None = None) -> None:
        self.config = config
        self.tenant = require_tenant(tenant if tenant is not None else config.tenant)
        self.agent = check.agent_id(agent)
        self.store = MemoryStore(
            config.store_path,
            busy_timeout_ms=config.sqlite_busy_timeout_ms,
            title_weight=config.bm25_title_weight,
            content_weight=config.bm25_content_weight,
            lexical_backend=config.lexical_backend,
            mmap_mb=config.sqlite_mmap_mb,
        )
        self._embedder: Embedder | None = None
        self._index: VectorIndex | None = None
        self._searcher: HybridSearcher | None = None
        self._behaviour: BehaviourStore | None = None
        self._trust: TrustModel | None = None
        self._ranker: LearnedRanker | None = None
        if config.vector_backend != "exact":
            _ = self.index  # opening a derived index reconciles it with SQLite

    @property
    def embedder(self) -> Embedder:
        """The embedding model (loaded on first use)."""
        if self._embedder is None:
            self._embedder = load_embedder(self.config.embedder, **self.config.embedder_options)
        return self._embedder

    @property
    def index(self) -> VectorIndex:
        """The vector index of ``config.vector_backend``."""
        if self._index is None:
            self._index = open_index(
                self.store,
                self.config.vector_backend,
                qdrant_location=self.config.qdrant_target,
                qdrant_collection=self.config.qdrant_collection,
            )
        return self._index

    @property
    def searcher(self) -> HybridSearcher:
        """The hybrid searcher over the store and the index, trust-weighted when ``trust_ranking`` is on."""
        if self._searcher is None:
            self._searcher = HybridSearcher(
                self.store,
                self.embedder,
                index=self.index,
                fusion=self.config.fusion,
                rrf_k=self.config.rrf_k,
                depth=self.config.retrieve_depth,
                trust=self.trust if self.config.trust_ranking else None,
                ranker=self._learned_ranker(),
            )
        return self._searcher

    @property
    def trust(self) -> TrustModel:
        """The trust model of this store (agents' Beta trust, signals, memory trust)."""
        if self._trust is None:
            self._trust = TrustModel(self.store.conn, self.config.trust_params)
        return self._trust

    @property
    def behaviour(self) -> BehaviourStore:
        """The behavioural file (feedback), opened on first use."""
        if self._behaviour is None:
            self._behaviour = BehaviourStore(
                self.config.behaviour_path, busy_timeout_ms=self.config.sqlite_busy_timeout_ms
            )
        return self._behaviour

    def _learned_ranker(self) -> LearnedRanker | None:
        """The ranking layer learned from feedback, when enabled and the behavioural file exists."""
        if not self.config.ltr_enabled or not self.config.behaviour_path.exists():
            return None
        if self._ranker is None:
            self._ranker = LearnedRanker(self.behaviour.conn, self.trust, min_feedback=self.config.ltr_min_feedback)
        return self._ranker

    def train_ranker(self) -> dict[str, Any] | None:
        """Fit the ranking layer on this tenant's feedback (see :mod:`hopmem.memory.ltr`).

        Returns:
            What was trained (queries, pairs, events, weights), or None while there is too little feedback
            (``ltr_min_feedback``): the layer stays off.
        """
        _ = self.behaviour  # creates the behavioural file
        ranker = self._learned_ranker() or LearnedRanker(
            self.behaviour.conn, self.trust, min_feedback=self.config.ltr_min_feedback
        )
        searcher = self.searcher
        info = ranker.train(
            self.store,
            self.tenant,
            lambda query: searcher.ranked_lists(self.tenant, query, "hybrid"),
            searcher.fuse,
            max_queries=self.config.ltr_max_queries,
        )
        if info is not None and self.config.ltr_enabled:
            searcher.ranker = ranker
        return info

    def get(self, memory_id: int) -> MemoryRecord:
        """One memory of this tenant.

        Raises:
            InputError: when there is no such memory in this tenant.
        """
        mid = check.memory_id(memory_id)
        found = self.store.get(self.tenant, [mid])
        if not found:
            raise InputError(f"There is no memory {mid} in tenant {self.tenant!r}; check the id.")
        return found[0]

    def _identity(self, agent: object) -> str | None:
        """Who acts: this handle's agent; a different ``agent`` argument on an agent's handle is refused."""
        named = check.agent_id(agent)
        if self.agent is None:
            return named
        if named is not None and named != self.agent:
            raise InputError(
                f"This Memory acts as agent {self.agent!r} and cannot act as {named!r}; open a Memory with that agent."
            )
        return self.agent

    def _embedder_key(self) -> tuple[str, int]:
        emb = self.embedder
        return emb.name, emb.dim

    def _eraser(self) -> Eraser:
        """The one erase path: every vector index that holds this store's vectors, and the behavioural file."""
        indexes: list[VectorIndex] = [self.index]
        other = Path(self.config.qdrant_target)
        if self.config.vector_backend != "qdrant" and other.is_dir() and any(other.iterdir()):
            indexes.append(
                open_index(
                    self.store,
                    "qdrant",
                    qdrant_location=str(other),
                    qdrant_collection=self.config.qdrant_collection,
                )
            )
        behaviour = self.behaviour if self.config.behaviour_path.exists() else None
        return Eraser(
            self.store,
            indexes,
            behaviour,
            self.config.checkpoint_path,
            busy_timeout_ms=self.config.sqlite_busy_timeout_ms,
        )

    def _close_extra_indexes(self, eraser: Eraser) -> None:
        for extra in eraser.indexes:
            if extra is not self._index:
                extra.close()

    def close(self) -> None:
        """Close the index, the behavioural file and the store."""
        if self._index is not None:
            self._index.close()
        if self._behaviour is not None:
            self._behaviour.close()
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
