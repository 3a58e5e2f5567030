"""The agent's own retrieval steps for the decomposer's reward: a plan scored where the agent uses it.

The first reward (:meth:`hopmem.finetune.decomposer_reward.PlanEnvironment.retrieve`) scores a plan by the first
ten documents of its fused hybrid lists. The agent does more with a plan: its retrieve step searches each text, the
hop step adds each sub-query's TreeHop tree, the fuse step keeps the best ``rerank_depth`` candidates of all lists and
the rerank step orders them with the cross-encoder (blended with the fused order); ``hopmem eval qa`` scores the
documents of that final ranking. In the first proxy a chain found about as much evidence as the whole question, so
GRPO learned to keep questions whole; in the agent's pipeline the rules' chains find 3.5 points more on dev
(docs/decomposer.md). :class:`AgentPipeline` runs those very steps (:func:`hopmem.agents.nodes.retrieve`, ``hop``,
``fuse``, ``rerank``) for a given plan, so the reward measures what the agent would find.

Two caches keep a rollout cheap: a search of the same text is answered once per corpus (:class:`CachedSearcher`), and
the cross-encoder scores each ``(question, passage)`` pair once (:class:`CachedCrossEncoder`; the blend with the
fused order is recomputed per plan, as it depends on the plan's order). Trust weighting is left out: every passage of
a BEIR corpus has the same trust, so it cannot change an order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from hopmem.agents.config import AgentConfig
from hopmem.agents.deps import GraphDeps
from hopmem.agents.nodes import fuse, hop, rerank, retrieve
from hopmem.agents.rerank.base import RankedPassage, check_input
from hopmem.agents.rerank.cross_encoder import blend_with_order
from hopmem.memory.datasets.store_loader import BEIR_TENANT
from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import HybridSearcher
from hopmem.memory.records import SearchResult

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hopmem.agents.multihop import TreeHopRetriever
    from hopmem.agents.rerank import Reranker
    from hopmem.memory.embeddings import Embedder
    from hopmem.memory.store import MemoryStore

log = logging.getLogger(__name__)

RERANKERS = ("cross-encoder", "none")
"""The rerank steps the agent pipeline can run per rollout."""


@dataclass(frozen=True)
class PipelineSettings:
    """The settings of the agent's steps that the reward reproduces; each is ``hopmem.Settings``' field of the same
    name (:meth:`from_settings`), and the defaults are those settings' defaults (a test keeps them equal).

    Args:
        fusion, rrf_k, retrieve_depth: each search's hybrid fusion and the candidates taken from each retriever.
        treehop_model: the TreeHop folder ("" = the packaged one, chosen by its measured rule as the agent does).
        treehop_top_n, treehop_hops: the hop step's tree (hops < 2: no hop step).
        reranker: the rerank step's model: ``cross-encoder`` or ``none`` (an LLM reranker per rollout would cost
            seconds; :class:`AgentPipeline` refuses it).
        reranker_model: the cross-encoder folder ("" = the user's trained one in the cache, else the shipped one).
    """

    fusion: str = "rrf"
    rrf_k: int = 60
    retrieve_depth: int = 30
    treehop_model: str = ""
    treehop_top_n: int = 5
    treehop_hops: int = 2
    reranker: str = "cross-encoder"
    reranker_model: str = ""

    @classmethod
    def from_settings(cls, settings: object) -> Self:
        """The fields of ``settings`` (``hopmem.Settings`` in practice) with the same names."""
        import dataclasses

        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(cls)})


class CachedSearcher(HybridSearcher):
    """A hybrid searcher that answers a repeated search from memory (the corpus does not change during training)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._found: dict[tuple[Any, ...], list[SearchResult]] = {}
        self._vectors: dict[str, NDArray[Any]] = {}

    def search(self, tenant: str, query: str, **options: Any) -> list[SearchResult]:
        if options.get("query_vector") is not None or options.get("filters") is not None:
            return super().search(tenant, query, **options)
        key = (tenant, query, *sorted(options.items()))
        if key not in self._found:
            self._found[key] = super().search(tenant, query, **options)
        return list(self._found[key])

    def embed_query(self, query: str) -> NDArray[Any]:
        if query not in self._vectors:
            self._vectors[query] = super().embed_query(query)
        return self._vectors[query]


class CachedCrossEncoder:
    """The agent's cross-encoder, each ``(query, passage)`` pair scored once; the blend is applied per call.

    Args:
        inner: a reranker with ``with_blend`` and ``blend`` (the cross-encoder); its raw scores are cached.
    """

    def __init__(self, inner: Any, *, blend: float | None = None, cache: dict[tuple[str, str], float] | None = None):
        self.inner = inner
        self.name = str(inner.name)
        self.blend = float(inner.blend if blend is None else blend)
        self._raw = inner.with_blend(0.0)
        self._cache: dict[tuple[str, str], float] = {} if cache is None else cache

    def with_blend(self, weight: float) -> CachedCrossEncoder:
        return CachedCrossEncoder(self.inner, blend=weight, cache=self._cache)

    def score(self, query: str, docs: Sequence[str]) -> list[float]:
        texts = check_input(query, docs)
        missing = list(dict.fromkeys(t for t in texts if (query, t) not in self._cache))
        if missing:
            for text, value in zip(missing, self._raw.score(query, missing), strict=True):
                self._cache[(query, text)] = float(value)
        return blend_with_order([self._cache[(query, t)] for t in texts], self.blend)

    def rank(self, query: str, docs: Sequence[str], top_k: int | None = None) -> list[RankedPassage]:
        scores = self.score(query, docs)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        if top_k is not None:
            order = order[: max(0, top_k)]
        return [RankedPassage(i, scores[i]) for i in order]

    @property
    def pairs_scored(self) -> int:
        """How many distinct pairs the model has scored (the cache's size)."""
        return len(self._cache)


class AgentPipeline:
    """The agent's retrieve, hop, fuse and rerank steps over BEIR corpora, for a plan given from outside.

    Args:
        embedder: the memory's embedder.
        cache_dir: the user's cache (where a trained cross-encoder is looked for).
        settings: the steps' settings.
        config: the graph's settings (:class:`AgentConfig`; its defaults are ``hopmem.Settings``').
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        cache_dir: Path,
        settings: PipelineSettings | None = None,
        config: AgentConfig | None = None,
    ) -> None:
        self.embedder = embedder
        self.cache_dir = Path(cache_dir)
        self.settings = settings or PipelineSettings()
        self.config = config or AgentConfig()
        if self.settings.reranker not in RERANKERS:
            raise InputError(
                f"The decomposer's agent reward reranks with the cross-encoder or none, not "
                f"{self.settings.reranker!r}; set HOPMEM_RERANKER=cross-encoder (or none) for the training run."
            )
        self._reranker: Reranker | None = None
        self._deps: dict[int, GraphDeps] = {}

    def reranker(self) -> Reranker | None:
        """The cross-encoder the agent would load, behind the score cache (loaded once, shared by every corpus);
        None with ``reranker = "none"``."""
        if self.settings.reranker == "none":
            return None
        if self._reranker is None:
            from hopmem.agents.rerank import load_reranker

            inner = load_reranker("cross-encoder", self.settings.reranker_model or None, cache_dir=self.cache_dir)
            self._reranker = CachedCrossEncoder(inner)
        return self._reranker

    def deps(self, store: MemoryStore) -> GraphDeps:
        """The nodes' dependencies over ``store`` (built once per store)."""
        key = id(store)
        if key not in self._deps:
            s = self.settings
            searcher = CachedSearcher(store, self.embedder, fusion=s.fusion, rrf_k=s.rrf_k, depth=s.retrieve_depth)
            self._deps[key] = GraphDeps(
                searcher=searcher,
                config=self.config,
                hopper=self._hopper(store, searcher),
                reranker=self.reranker(),
            )
        return self._deps[key]

    def _hopper(self, store: MemoryStore, searcher: HybridSearcher) -> TreeHopRetriever | None:
        from hopmem.agents.multihop import configured_hopper

        s = self.settings
        return configured_hopper(
            store,
            searcher.index,
            self.embedder,
            model_dir=s.treehop_model,
            top_n=s.treehop_top_n,
            hops=s.treehop_hops,
        )

    def rank(self, store: MemoryStore, question: str, mode: str, queries: Sequence[str]) -> tuple[list[str], int]:
        """The documents of the agent's final ranking for a checked plan (rerank order, then the fused order, best
        chunk first, as ``hopmem eval qa`` scores them), and how many distinct texts were searched."""
        deps = self.deps(store)
        state: dict[str, Any] = {
            "tenant": BEIR_TENANT,
            "question": question,
            "history": [],
            "plan": {"mode": mode, "queries": list(queries), "standalone": question},
            "round": 0,
            "lists": {},
        }
        for step in (retrieve, hop, fuse, rerank):
            update = dict(step(state, deps))  # type: ignore[arg-type]
            update.pop("trace", None)
            state.update(update)
        ids = [int(i) for i in state.get("ranking") or []]
        ids += [int(p["id"]) for p in state.get("candidates") or []]
        ids = list(dict.fromkeys(ids))
        external = {r.id: r.external_id for r in store.get(BEIR_TENANT, ids)}
        ranked = list(dict.fromkeys(str(external[i]) for i in ids if external.get(i)))
        texts = {question} if list(queries) != [question] else set()
        texts.update(state.get("queries") or [])
        return ranked, max(1, len(texts))
