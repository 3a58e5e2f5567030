"""Evidence lists of the agent: its passages fused into one trust-weighted candidate list, on the searcher's path.

The lists hold JSON-ready :class:`~hopmem.agents.state.Passage` dicts (the shape of
:meth:`hopmem.memory.records.SearchResult.to_dict`) so the graph state can be checkpointed. Fusion and trust
weighting are the searcher's own (:meth:`hopmem.memory.hybrid.HybridSearcher.fuse_results`, rank-score fusion by
default, as in ACQO's RSF): this module only turns passages into ranked lists and the results back into passages, so
evidence from distrusted writers sinks exactly as in a search, and quarantined memories, which no read path returns,
never appear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from hopmem.agents.rerank import passage_text as rerank_text
from hopmem.agents.state import Passage
from hopmem.memory.records import Hit

if TYPE_CHECKING:
    from hopmem.memory.hybrid import HybridSearcher
    from hopmem.memory.records import SearchResult


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

    Each returned passage carries ``score`` (the fused, trust-weighted score), ``ranks`` (its 1-based rank in every
    list it appears in, by list name) and ``trust``. Every passage is read from the store, so a passage known only by
    id (a hop tree's) gets its text, and a memory the store no longer returns for ``tenant`` (erased, quarantined) is
    dropped.
    """
    ranked = {name: [Hit(int(p["id"]), float(p["score"])) for p in passages] for name, passages in lists.items()}
    return as_passages(searcher.fuse_results(tenant, ranked, k=depth, fusion=fusion, weights=weights))


def as_passages(results: Iterable[SearchResult]) -> list[Passage]:
    """Search results in the JSON form the graph's state holds."""
    return [cast(Passage, r.to_dict()) for r in results]


def passage_text(passage: Mapping[str, Any]) -> str:
    """What a reranker or a bridge answer reads of a passage: the reranker's own ``title: body`` format."""
    return rerank_text(passage.get("title"), str(passage.get("text") or ""))


def brief(passages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The trace's view of a list: ids, scores and ranks, without the text."""
    keys = ("id", "score", "ranks", "rerank_score", "trust")
    return [{k: p[k] for k in keys if k in p} for p in passages]
