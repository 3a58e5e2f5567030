"""Evidence lists of the agent: fusion of every sub-query's and hop tree's list into one trust-weighted candidate list.

The lists hold JSON-ready passage dicts (the shape of :meth:`hopmem.memory.records.SearchResult.to_dict`) so the
graph state can be checkpointed. Fusion is rank-score fusion by default (rank and normalised score, as in ACQO's
RSF, the same function the memory engine uses); after fusion each memory's score is weighed by its trust, so
evidence from distrusted writers sinks and quarantined memories, which no read path returns, never appear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hopmem.agents.rerank import passage_text as rerank_text
from hopmem.memory.fusion import rrf, rsf, weight_by_trust
from hopmem.memory.records import Hit, SearchResult

if TYPE_CHECKING:
    from hopmem.memory.hybrid import HybridSearcher

Passage = dict[str, Any]


def fuse_lists(
    searcher: HybridSearcher,
    tenant: str,
    lists: Mapping[str, Sequence[Passage]],
    *,
    fusion: str = "rsf",
    depth: int = 20,
    weights: Mapping[str, float] | None = None,
) -> list[Passage]:
    """The best ``depth`` passages of all ``lists`` fused and trust-weighted, best first.

    ``weights`` weighs lists by name in the fusion (default 1 each).

    Each returned passage carries ``score`` (the fused, trust-weighted score) and ``ranks`` (its 1-based rank in
    every list it appears in, by list name). Passages known only by id (a hop tree's) are read from the store, and
    a memory the store no longer returns for ``tenant`` (erased, quarantined) is dropped.
    """
    named = {name: [Hit(int(p["id"]), float(p["score"])) for p in hits] for name, hits in lists.items() if hits}
    if not named:
        return []
    fused = rrf(named, k=searcher.rrf_k, weights=weights) if fusion == "rrf" else rsf(named, weights=weights)
    trust: dict[int, float] = {}
    if searcher.trust is not None and fused:
        trust = searcher.trust.memory_trusts(tenant, [h.memory_id for h in fused])
        params = searcher.trust.params
        fused = weight_by_trust(fused, trust, floor=params.rank_floor, neutral=params.prior_mean)
    fused = fused[:depth]
    known: dict[int, Passage] = {}
    for hits in lists.values():
        for p in hits:
            if "text" in p:
                known.setdefault(int(p["id"]), p)
    missing = [h.memory_id for h in fused if h.memory_id not in known]
    for record in searcher.store.get(tenant, missing):
        known[record.id] = SearchResult(record, 0.0, {}).to_dict()
    ranks = {name: {int(p["id"]): r for r, p in enumerate(hits, start=1)} for name, hits in lists.items()}
    out = []
    for hit in fused:
        if hit.memory_id not in known:
            continue
        passage = dict(known[hit.memory_id])
        passage["score"] = round(hit.score, 6)
        passage["ranks"] = {name: pos[hit.memory_id] for name, pos in ranks.items() if hit.memory_id in pos}
        if hit.memory_id in trust:
            passage["trust"] = round(trust[hit.memory_id], 4)
        out.append(passage)
    return out


def passage_text(passage: Mapping[str, Any]) -> str:
    """What a reranker or a bridge answer reads of a passage: the reranker's own ``title: body`` format."""
    return rerank_text(passage.get("title"), str(passage.get("text") or ""))


def brief(passages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The trace's view of a list: ids, scores and ranks, without the text."""
    keys = ("id", "score", "ranks", "rerank_score", "trust")
    return [{k: p[k] for k in keys if k in p} for p in passages]
