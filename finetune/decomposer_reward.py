"""The query decomposer's reward: run a plan's searches, fuse them as the agent does, score against the evidence.

A rollout is the text the planner's model wrote after the forced ``{"`` (the same start
:meth:`hopmem.agents.llm.transformers_llm.TransformersLLM.complete_json` gives it at inference). It is read exactly as
the agent reads it - parsed as JSON against :func:`hopmem.agents.planner.plan_schema`, then
:func:`hopmem.agents.planner.check_plan` - and a plan that fails either earns :attr:`RewardWeights.invalid` alone
(the format penalty; the agent would fall back to the rules for it).

A valid plan is retrieved the way the agent's retrieve step does it (:func:`hopmem.agents.nodes.retrieve`): a split
also searches the whole question (list ``q0``), each sub-query is searched with the memory's hybrid search (a text
once), a chain's ``{k}`` is filled with the extractive bridge answer of sub-query k's top passages, and every list is
fused by rank-score fusion (:func:`hopmem.memory.fusion.rsf`). The fused documents are scored against the question's
supporting passages (recall@10 or nDCG@10); each distinct search beyond the question's own costs
:attr:`RewardWeights.search_cost` (a search is latency), and a valid plan earns :attr:`RewardWeights.valid`.
That is the ``fused`` pipeline: no TreeHop and no reranker, about 10 ms a search, cached by text. The ``agent``
pipeline (:mod:`hopmem.finetune.decomposer_pipeline`) runs the agent's own retrieve, hop, fuse and rerank steps for
the plan and scores the documents of the reranked list, as ``hopmem eval qa`` does: a chain's extra passages then
count where the agent uses them (the cross-encoder reorders the deeper fused pool), not only when they reach the
fused top ten.

:class:`PlanEnvironment` holds one hybrid searcher per BEIR folder over its indexed corpus, built once and cached
(:func:`hopmem.memory.datasets.store_loader.open_indexed_corpus`), so a rollout costs only its searches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hopmem.agents.bridge import bridge_answer
from hopmem.agents.evidence import as_passages, passage_text
from hopmem.agents.llm.schema import parse_json_reply
from hopmem.agents.llm.transformers_llm import json_part
from hopmem.agents.planner import check_plan, fill_placeholders, plan_schema
from hopmem.agents.prompts import decompose_messages
from hopmem.finetune.rewards import RewardLog, completion_text
from hopmem.memory.datasets.metrics import ndcg_at_k, recall_at_k
from hopmem.memory.datasets.store_loader import BEIR_TENANT, open_indexed_corpus
from hopmem.memory.errors import HopmemError
from hopmem.memory.fusion import rsf
from hopmem.memory.hybrid import HybridSearcher
from hopmem.memory.records import Hit

if TYPE_CHECKING:
    from hopmem.finetune.decomposer_pipeline import AgentPipeline
    from hopmem.memory.embeddings import Embedder
    from hopmem.memory.store import MemoryStore

log = logging.getLogger(__name__)

JSON_PREFIX = '{"'
"""The forced start of every plan (the prompt ends with it; the completion continues it)."""


def plan_prompt(tokenizer: Any, question: str, max_subqueries: int) -> str:
    """The tuned planner's chat prompt for ``question`` as text, ending with the forced ``{"`` (as at inference)."""
    text = tokenizer.apply_chat_template(
        decompose_messages(question, max_subqueries=max_subqueries), add_generation_prompt=True, tokenize=False
    )
    return str(text) + JSON_PREFIX


Metric = Literal["recall@10", "ndcg@10"]


@dataclass(frozen=True)
class RewardWeights:
    """The reward's terms (recorded in the card).

    Args:
        metric: what the fused list is scored by against the supporting passages.
        search_cost: subtracted per distinct search beyond the whole question's own.
        valid: the format term every valid plan earns.
        invalid: all an invalid plan (bad JSON, or one :func:`check_plan` refuses) earns.
        k: the metric's cut (documents of the fused list scored).
        depth: passages each search returns (the agent's ``retrieve_k``).
        bridge_passages: passages a chain's bridge answer is read from (the agent's ``top_k``).
        max_subqueries: most sub-queries a plan may have (``Settings.max_subqueries``).
    """

    metric: Metric = "recall@10"
    search_cost: float = 0.02
    valid: float = 0.1
    invalid: float = -0.5
    k: int = 10
    depth: int = 10
    bridge_passages: int = 3
    max_subqueries: int = 3


@dataclass
class PlanScore:
    """What one rollout earned and why."""

    reward: float
    valid: bool
    mode: str = ""
    queries: list[str] = field(default_factory=list)
    searches: int = 0
    recall: float = 0.0
    ndcg: float = 0.0
    error: str = ""


def parse_plan(completion: str, question: str, max_subqueries: int) -> tuple[str, list[str]]:
    """The checked ``(mode, queries)`` of a completion written after :data:`JSON_PREFIX`, as the agent reads it.

    Raises:
        HopmemError, ValueError: on invalid JSON, a schema break or a plan :func:`check_plan` refuses.
    """
    text = JSON_PREFIX + completion
    reply = parse_json_reply(
        json_part(text), plan_schema(max_subqueries, query_chars=None), source="decomposer rollout"
    )
    return check_plan(reply, question, max_subqueries=max_subqueries, cut_long=True)


class PlanEnvironment:
    """Hybrid search over each training folder's indexed corpus, with the plan reward on top.

    Args:
        embedder: the memory's embedder.
        cache_dir: where indexed corpora are cached (built on first use, reused after).
        chunk_size, chunk_overlap: chunking of the indexed corpora.
        weights: the reward's terms.
        deep_k: the deeper cut of the curriculum's measurement (:mod:`hopmem.finetune.decomposer_data`).
        progress: progress bars while indexing.
        pipeline: the agent's steps to score plans with (the ``agent`` pipeline); None scores the fused lists.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        cache_dir: Path,
        chunk_size: int,
        chunk_overlap: int,
        weights: RewardWeights | None = None,
        deep_k: int = 30,
        progress: bool = False,
        pipeline: AgentPipeline | None = None,
    ) -> None:
        self.embedder = embedder
        self.pipeline = pipeline
        self.cache_dir = Path(cache_dir)
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.weights = weights or RewardWeights()
        self.deep_k = deep_k
        self.progress = progress
        self._stores: dict[str, MemoryStore] = {}
        self._searchers: dict[str, HybridSearcher] = {}
        self._cache: dict[tuple[str, str, int], list[dict[str, Any]]] = {}

    def searcher(self, dataset: str) -> HybridSearcher:
        """The hybrid searcher over ``dataset``'s corpus (indexed once, then cached)."""
        if dataset not in self._searchers:
            store = open_indexed_corpus(
                Path(dataset),
                self.embedder,
                cache_dir=self.cache_dir,
                chunk_size=self.chunk_size,
                chunk_overlap=self.chunk_overlap,
                progress=self.progress,
            )
            self._stores[dataset] = store
            self._searchers[dataset] = HybridSearcher(store, self.embedder, fusion="rsf")
        return self._searchers[dataset]

    def search(self, dataset: str, query: str, k: int) -> list[dict[str, Any]]:
        """The top ``k`` passages of ``query`` in ``dataset`` (the agent's passage form), cached by text."""
        key = (dataset, query, k)
        if key not in self._cache:
            found = self.searcher(dataset).search(BEIR_TENANT, query, k=k, mode="hybrid") if query.strip() else []
            self._cache[key] = [dict(p) for p in as_passages(found)]
        return self._cache[key]

    def whole_recall(self, dataset: str, question: str, supporting: Sequence[str]) -> tuple[float, float]:
        """Recall at ``k`` and at ``deep_k`` of the whole question's own search (the curriculum's measurement)."""
        qrels = dict.fromkeys(supporting, 1)
        ranked = _documents(self.search(dataset, question, self.deep_k))
        return recall_at_k(ranked, qrels, self.weights.k), recall_at_k(ranked, qrels, self.deep_k)

    def retrieve(self, dataset: str, question: str, mode: str, queries: Sequence[str]) -> tuple[list[str], int]:
        """The fused document ranking of a checked plan, and how many distinct searches it ran."""
        k = self.weights.depth
        lists: dict[str, list[dict[str, Any]]] = {}
        texts: set[str] = set()
        if list(queries) != [question]:
            lists["q0"] = self.search(dataset, question, k)
            texts.add(question)
        answers: list[str] = []
        for n, raw in enumerate(queries, start=1):
            query = fill_placeholders(raw, answers) if mode == "sequential" else raw
            found = self.search(dataset, query, k)
            texts.add(query)
            lists[f"q{n}"] = found
            if mode == "sequential" and n < len(queries):
                top = [passage_text(p) for p in found[: self.weights.bridge_passages]]
                answers.append(bridge_answer(None, query, top))
        by_id = {int(p["id"]): p for hits in lists.values() for p in hits}
        fused = rsf({name: [Hit(int(p["id"]), float(p["score"])) for p in hits] for name, hits in lists.items()})
        ranked = _documents([by_id[h.memory_id] for h in fused])
        return ranked, max(1, len(texts))

    def rank(self, dataset: str, question: str, mode: str, queries: Sequence[str]) -> tuple[list[str], int]:
        """The documents a checked plan finds, as the reward scores them (the agent's final ranking with a
        pipeline, else the fused lists), and how many distinct searches it ran."""
        if self.pipeline is None:
            return self.retrieve(dataset, question, mode, queries)
        self.searcher(dataset)
        return self.pipeline.rank(self._stores[dataset], question, mode, queries)

    def score(self, completion: str, question: str, dataset: str, supporting: Sequence[str]) -> PlanScore:
        """The reward of one rollout for ``question`` (see the module doc). Never raises on a bad rollout."""
        w = self.weights
        try:
            mode, queries = parse_plan(completion, question, w.max_subqueries)
        except (HopmemError, ValueError) as exc:
            return PlanScore(w.invalid, False, error=str(exc)[:200])
        ranked, searches = self.rank(dataset, question, mode, queries)
        qrels = dict.fromkeys(supporting, 1)
        recall, ndcg = recall_at_k(ranked, qrels, w.k), ndcg_at_k(ranked, qrels, w.k)
        value = recall if w.metric == "recall@10" else ndcg
        reward = value - w.search_cost * (searches - 1) + w.valid
        return PlanScore(reward, True, mode, list(queries), searches, recall, ndcg)

    def close(self) -> None:
        """Close the opened stores."""
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        self._searchers.clear()


def _documents(passages: Sequence[dict[str, Any]]) -> list[str]:
    """Document ids in order of their best chunk."""
    return list(dict.fromkeys(str(p["external_id"]) for p in passages if p.get("external_id")))


@dataclass
class PlanLog(RewardLog):
    """:class:`RewardLog` plus what the rollouts' plans were (valid share, modes, searches, recall)."""

    modes: dict[str, int] = field(default_factory=dict)
    recalls: list[float] = field(default_factory=list)
    searches: list[int] = field(default_factory=list)

    def add_scores(self, scores: Sequence[PlanScore]) -> None:
        self.add([s.reward for s in scores], [s.valid for s in scores])
        for s in scores:
            self.modes[s.mode or "invalid"] = self.modes.get(s.mode or "invalid", 0) + 1
            if s.valid:
                self.recalls.append(s.recall)
                self.searches.append(s.searches)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(super().summary())
        out["modes"] = dict(sorted(self.modes.items()))
        if self.recalls:
            out["valid_recall@10"] = round(sum(self.recalls) / len(self.recalls), 4)
            out["valid_searches"] = round(sum(self.searches) / len(self.searches), 3)
        return out


def plan_reward_func(env: PlanEnvironment, log_to: PlanLog | None = None) -> Callable[..., list[float]]:
    """A TRL reward function for plan prompts whose dataset has ``question``, ``dataset`` and ``supporting``."""

    def plan_reward(
        prompts: list[Any],
        completions: list[Any],
        question: list[str],
        dataset: list[str],
        supporting: list[list[str]],
        **_: Any,
    ) -> list[float]:
        scores = [
            env.score(completion_text(c), q, d, s)
            for c, q, d, s in zip(completions, question, dataset, supporting, strict=True)
        ]
        if log_to is not None:
            log_to.add_scores(scores)
        return [s.reward for s in scores]

    return plan_reward
