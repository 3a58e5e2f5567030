"""Fusion of ranked lists.

- Reciprocal rank fusion (RRF, Cormack et al. 2009): ``sum_l w_l / (k + rank_l(d))``; ignores score magnitudes.
- Rank-score fusion (RSF): each list's scores are min-max normalised to [0, 1] and combined with the rank term,
  ``sum_l w_l * (norm_l(d) + 1 / rank_l(d)) / 2``, so a document that is both near the top and clearly ahead
  on score wins, while a flat list (all scores equal) falls back to its ranks.
Ranks start at 1. A document absent from a list gets nothing from it. :func:`fuse` picks one of the two by name.
- Trust weighting (:func:`weight_by_trust`): after fusion, each memory's score shrinks with its trust
  (:mod:`hopmem.memory.trust.model`) below a neutral level, so that evidence from distrusted writers sinks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hopmem.memory.errors import InputError
from hopmem.memory.records import Hit

FUSIONS: tuple[str, ...] = ("rrf", "rsf")
"""The fusion methods by name."""


def fuse(
    lists: Mapping[str, Sequence[Hit]],
    *,
    method: str = "rrf",
    k: int = 60,
    weights: Mapping[str, float] | None = None,
) -> list[Hit]:
    """Fusion of named ranked lists by ``method`` (``rrf`` with constant ``k``, or ``rsf``), best first.

    Raises:
        InputError: on an unknown method.
    """
    if method == "rrf":
        return rrf(lists, k=k, weights=weights)
    if method == "rsf":
        return rsf(lists, weights=weights)
    raise InputError(f"Unknown fusion {method!r}; use one of {', '.join(FUSIONS)}.")


def rrf(lists: Mapping[str, Sequence[Hit]], *, k: int = 60, weights: Mapping[str, float] | None = None) -> list[Hit]:
    """Reciprocal rank fusion of named ranked lists (best first)."""
    fused: dict[int, float] = {}
    for name, hits in lists.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, hit in enumerate(hits, start=1):
            fused[hit.memory_id] = fused.get(hit.memory_id, 0.0) + weight / (k + rank)
    return _ordered(fused)


def rsf(lists: Mapping[str, Sequence[Hit]], *, weights: Mapping[str, float] | None = None) -> list[Hit]:
    """Rank-score fusion of named ranked lists (best first)."""
    fused: dict[int, float] = {}
    for name, hits in lists.items():
        if not hits:
            continue
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        scores = [h.score for h in hits]
        low, high = min(scores), max(scores)
        span = high - low
        for rank, hit in enumerate(hits, start=1):
            norm = (hit.score - low) / span if span > 0 else 1.0
            fused[hit.memory_id] = fused.get(hit.memory_id, 0.0) + weight * (norm + 1.0 / rank) / 2.0
    return _ordered(fused)


def weight_by_trust(
    hits: Sequence[Hit], trust: Mapping[int, float], *, floor: float = 0.01, neutral: float = 1.0
) -> list[Hit]:
    """Weigh fused evidence by the trust of each memory, re-ordered (best first).

    The weight is ``trust / neutral`` clipped to ``[floor, 1]``: trust at or above ``neutral`` (a new agent's prior
    trust) leaves the score as it is, so ranking does not punish newness, only evidence against a writer; below it
    the score shrinks in proportion. A positive score is multiplied by the weight and a negative one (a cosine)
    divided by it, so lower trust always means a lower score. The floor keeps an order among distrusted memories
    instead of tying them all at zero; a memory absent from ``trust`` gets the floor.
    """
    weighted: dict[int, float] = {}
    for hit in hits:
        weight = min(1.0, max(floor, float(trust.get(hit.memory_id, 0.0)) / neutral))
        weighted[hit.memory_id] = hit.score * weight if hit.score >= 0 else hit.score / weight
    return _ordered(weighted)


def _ordered(fused: dict[int, float]) -> list[Hit]:
    return [Hit(mid, score) for mid, score in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))]
