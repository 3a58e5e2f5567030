"""Lexical, dense and hybrid search over one store, and the one fusion path every ranked list goes through.

:meth:`HybridSearcher.search` fuses its own lexical and dense lists; :meth:`HybridSearcher.fuse_results` fuses lists
found elsewhere (the agent's sub-query searches and hop trees) and turns them into results the same way: fusion
(:mod:`hopmem.memory.fusion`), then trust weighting with this searcher's trust model, then the cut to ``k``, then the
records, read for the tenant (a memory the store no longer returns, erased or quarantined, is dropped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from hopmem.memory.errors import InputError, StoreError
from hopmem.memory.fusion import fuse, weight_by_trust
from hopmem.memory.records import Hit, SearchFilter, SearchResult
from hopmem.memory.store import MemoryStore, require_tenant
from hopmem.memory.vectors.exact import ExactVectorIndex

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from hopmem.memory.embeddings import Embedder
    from hopmem.memory.ltr import LearnedRanker
    from hopmem.memory.trust.model import TrustModel
    from hopmem.memory.vectors.base import VectorIndex

SearchMode = Literal["lexical", "dense", "hybrid"]

SEARCH_MODES: tuple[str, ...] = ("lexical", "dense", "hybrid")


class HybridSearcher:
    """Runs bm25 and dense retrieval and fuses them.

    Args:
        store: the store to search.
        embedder: turns queries into vectors; may be None for lexical-only use.
        index: the vector index (defaults to the exact index over ``store``).
        fusion: ``rrf`` or ``rsf``.
        rrf_k: the constant of RRF.
        depth: how many candidates each retriever contributes before fusion.
        trust: when given, fused scores are weighted by memory trust (trust always has the last word).
        ranker: when given, the learned ranking layer re-scores the fused candidates before trust weighting.
    """

    def __init__(
        self,
        store: MemoryStore,
        embedder: Embedder | None,
        *,
        index: VectorIndex | None = None,
        fusion: str = "rrf",
        rrf_k: int = 60,
        depth: int = 30,
        trust: TrustModel | None = None,
        ranker: LearnedRanker | None = None,
    ) -> None:
        if fusion not in ("rrf", "rsf"):
            raise InputError(f"Unknown fusion {fusion!r}; use 'rrf' or 'rsf'.")
        self.store = store
        self.embedder = embedder
        self.index: VectorIndex = index or ExactVectorIndex(store)
        self.fusion = fusion
        self.rrf_k = rrf_k
        self.depth = depth
        self.trust = trust
        self.ranker = ranker

    def _check_embedder(self) -> None:
        """Refuse to compare a query with vectors made by another model (the scores would mean nothing)."""
        stored = self.store.embedder_info()
        if stored is None or self.embedder is None:
            return
        if stored != (self.embedder.name, self.embedder.dim):
            raise StoreError(
                f"The store {self.store.path} holds vectors of embedder {stored[0]!r} (dim {stored[1]}), not "
                f"{self.embedder.name!r}; search with that embedder, or re-ingest into a new data directory."
            )

    def embed_query(self, query: str) -> NDArray[np.float32]:
        if self.embedder is None:
            raise InputError("Dense search needs an embedder; use mode='lexical' or configure HOPMEM_EMBEDDER.")
        fast = getattr(self.embedder, "embed_query", None)
        return fast(query) if fast is not None else self.embedder.embed([query])[0]

    def ranked_lists(
        self,
        tenant: str,
        query: str,
        mode: str,
        *,
        depth: int | None = None,
        query_vector: NDArray[np.float32] | None = None,
        filters: SearchFilter | None = None,
    ) -> dict[str, list[Hit]]:
        """The raw ranked lists that ``mode`` uses, keyed ``lexical`` / ``dense``; both apply ``filters``."""
        require_tenant(tenant)
        if mode not in SEARCH_MODES:
            raise InputError(f"Unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}.")
        depth = depth or self.depth
        lists: dict[str, list[Hit]] = {}
        # bm25 and the query embedding run one after the other: overlapping them in a thread was slower on two
        # cores (the embedding's two ONNX threads and bm25 compete; 9.9 vs 9.2 ms p50 at 10k memories).
        if mode in ("dense", "hybrid"):
            self._check_embedder()
        if mode in ("lexical", "hybrid"):
            lists["lexical"] = self.store.search_lexical(tenant, query, depth, filters=filters)
        if mode in ("dense", "hybrid"):
            vector = query_vector if query_vector is not None else self.embed_query(query)
            allowed = None if filters is None or filters.empty else self.store.filtered_ids(tenant, filters)
            lists["dense"] = self.index.search(tenant, vector, depth, ids=allowed)
        return lists

    def fuse(self, lists: Mapping[str, Sequence[Hit]]) -> list[Hit]:
        """The fusion :meth:`search` applies to its own mode lists, before learned ranking and trust.

        One list (a lexical or dense search) passes through with its own scores. The learned ranker is trained on
        this fusion's output, so it takes no trust and no weights.
        """
        if len(lists) == 1:
            return list(next(iter(lists.values())))
        return fuse(lists, method=self.fusion, k=self.rrf_k)

    def fuse_results(
        self,
        tenant: str,
        lists: Mapping[str, Sequence[Hit]],
        *,
        k: int,
        fusion: str | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> list[SearchResult]:
        """The best ``k`` memories of ``tenant`` among named ranked lists found elsewhere, fused and trust-weighted.

        Args:
            tenant: whose memories; the records are read for this tenant only.
            lists: ranked lists by name (best first); a list's scores need only be comparable within it.
            k: how many results at most (fewer when some fused memories are no longer in the store).
            fusion: ``rrf`` or ``rsf`` (default: this searcher's); every list goes through the formula, even a
                single one, so that the scores are always on the fusion's scale.
            weights: the weight of each list by name in the fusion (default 1 each).

        Each result carries the fused, trust-weighted score, its 1-based rank in every list it appears in, and its
        trust (None without a trust model). The learned ranker is not applied: it was trained on this searcher's own
        lexical and dense lists.

        Raises:
            InputError: on an unknown fusion.
        """
        require_tenant(tenant)
        fused = fuse(lists, method=fusion or self.fusion, k=self.rrf_k, weights=weights)
        return self._results(tenant, lists, fused, k)

    def weigh_by_trust(self, hits: Sequence[Hit], trust: Mapping[int, float]) -> list[Hit]:
        """``hits`` weighed by the given trust of each memory with this searcher's rule, re-ordered (best first).

        The rule is :func:`hopmem.memory.fusion.weight_by_trust` with the trust model's floor and neutral level; a
        memory absent from ``trust`` gets the floor. Without a trust model the hits are returned as they are, in
        their order. Callers that score the fused results again (a reranker) use this, so that a distrusted memory
        cannot climb back by its text alone.
        """
        if self.trust is None:
            return list(hits)
        params = self.trust.params
        return weight_by_trust(hits, trust, floor=params.rank_floor, neutral=params.prior_mean)

    def _results(self, tenant: str, lists: Mapping[str, Sequence[Hit]], fused: list[Hit], k: int) -> list[SearchResult]:
        """The tail both paths share: trust weighting, the cut to ``k``, ranks by list name, the records."""
        trust: dict[int, float] = {}
        if self.trust is not None and fused:
            trust = self.trust.memory_trusts(tenant, [h.memory_id for h in fused])
            fused = self.weigh_by_trust(fused, trust)
        fused = fused[:k]
        ranks = {name: {h.memory_id: r for r, h in enumerate(hits, start=1)} for name, hits in lists.items()}
        records = {r.id: r for r in self.store.get(tenant, [h.memory_id for h in fused])}
        return [
            SearchResult(
                record=records[h.memory_id],
                score=h.score,
                ranks={name: pos[h.memory_id] for name, pos in ranks.items() if h.memory_id in pos},
                trust=trust.get(h.memory_id),
            )
            for h in fused
            if h.memory_id in records
        ]

    def search(
        self,
        tenant: str,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        depth: int | None = None,
        query_vector: NDArray[np.float32] | None = None,
        filters: SearchFilter | None = None,
    ) -> list[SearchResult]:
        """The top ``k`` memories of ``tenant`` for ``query``.

        Raises:
            InputError: on an empty query, an unknown mode or a missing tenant.
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError("The query is empty; give some words to search for.")
        lists = self.ranked_lists(
            tenant, query, mode, depth=max(depth or self.depth, k), query_vector=query_vector, filters=filters
        )
        fused = self.fuse(lists)
        if self.ranker is not None:
            fused = self.ranker.rescore(self.store, tenant, lists, fused)
        return self._results(tenant, lists, fused, k)
