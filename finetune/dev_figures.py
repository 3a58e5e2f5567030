"""Dev figures of a reranker on the dev pairs of :mod:`hopmem.finetune.reranker_data`, and how tables show them.

:func:`dev_metrics` scores a model on each dev query's pairs (its positives and sampled negatives): cheap enough to
measure before and after every training stage, no substitute for ``hopmem eval rerank`` over a retrieval run.
:func:`chance_metrics` is the level of a model without skill on the same pairs (the mean of random orders), which a
setwise model that never names a passage reaches only by luck of its one random draw.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hopmem.agents.rerank import Reranker
    from hopmem.finetune.reranker_data import RerankPair


def _by_query(pairs: list[RerankPair]) -> list[list[RerankPair]]:
    groups: dict[str, list[RerankPair]] = {}
    for pair in pairs:
        groups.setdefault(pair.query_id, []).append(pair)
    return list(groups.values())


def _ranking_figures(groups: list[list[RerankPair]], scores: list[list[float]]) -> tuple[float | None, ...]:
    """Pairwise accuracy, MRR of the best positive and nDCG@10 of ``scores`` (one list per group), as
    :func:`dev_metrics` defines them; None where no group has what a figure needs."""
    correct = total = 0
    rr: list[float] = []
    ndcg: list[float] = []
    for group, group_scores in zip(groups, scores, strict=True):
        pos = [s for p, s in zip(group, group_scores, strict=True) if p.label > 0]
        neg = [s for p, s in zip(group, group_scores, strict=True) if p.label <= 0]
        correct += sum(a > b for a in pos for b in neg)
        total += len(pos) * len(neg)
        if pos:
            ordered = sorted(group_scores, reverse=True)
            rr.append(1.0 / (ordered.index(max(pos)) + 1))
            ranked = sorted(range(len(group)), key=lambda i: -group_scores[i])
            ndcg.append(_ndcg10([group[i].label for i in ranked]))
    return (
        correct / total if total else None,
        sum(rr) / len(rr) if rr else None,
        sum(ndcg) / len(ndcg) if ndcg else None,
    )


def dev_metrics(reranker: Reranker, pairs: list[RerankPair]) -> dict[str, float | None]:
    """BCE loss (the score read as a logit), pairwise accuracy (positive above negative, per query), MRR of the best
    positive and nDCG@10 (linear gains = labels, ties kept in the pairs' order), on ``pairs``.

    The nDCG is within each query's dev pairs (its positives and sampled negatives), not over a retrieval run: it
    compares models on the same pairs, cheaply, and is no substitute for ``hopmem eval rerank``. A figure that cannot
    be measured (no dev pairs: ``--dev-queries 0``; no positive or no negative) is None, written as JSON null."""
    if not pairs:
        return {"loss": None, "pairwise_accuracy": None, "mrr": None, "ndcg@10": None, "pairs": 0}
    groups = _by_query(pairs)
    scores = [reranker.score(group[0].query, [p.text for p in group]) for group in groups]
    losses: list[float] = []
    for group, group_scores in zip(groups, scores, strict=True):
        for p, s in zip(group, group_scores, strict=True):
            prob = 1.0 / (1.0 + math.exp(-max(min(s, 50.0), -50.0)))
            losses.append(-(p.label * math.log(prob + 1e-12) + (1 - p.label) * math.log(1 - prob + 1e-12)))
    pairwise, mrr, ndcg = _ranking_figures(groups, scores)
    return {
        "loss": round(sum(losses) / len(losses), 4),
        "pairwise_accuracy": _rounded(pairwise),
        "mrr": _rounded(mrr),
        "ndcg@10": _rounded(ndcg),
        "pairs": len(pairs),
    }


def chance_metrics(pairs: list[RerankPair], draws: int = 2000, seed: int = 0) -> dict[str, float | None]:
    """The mean of :func:`dev_metrics`' ranking figures over ``draws`` seeded random orders of each query's pairs.

    A reranker that falls back to a random order (a setwise model that never names a passage) scores one such draw,
    which can land well above or below this mean on a few queries; a model has ranking skill on these pairs only
    where it beats the mean, not just its base's one draw. Pairwise accuracy's mean is 0.5 by symmetry; MRR's and
    nDCG's depend on each query's count of positives and negatives."""
    if not pairs or draws < 1:
        return {"pairwise_accuracy": None, "mrr": None, "ndcg@10": None, "pairs": len(pairs), "draws": 0}
    rng = random.Random(seed)
    groups = _by_query(pairs)
    sums = [0.0, 0.0, 0.0]
    seen = [0, 0, 0]
    for _ in range(draws):
        figures = _ranking_figures(groups, [[rng.random() for _ in group] for group in groups])
        for i, value in enumerate(figures):
            if value is not None:
                sums[i] += value
                seen[i] += 1
    means = [_rounded(total / n) if n else None for total, n in zip(sums, seen, strict=True)]
    return {"pairwise_accuracy": means[0], "mrr": means[1], "ndcg@10": means[2], "pairs": len(pairs), "draws": draws}


def _rounded(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def shown(value: Any, spec: str = "") -> str:
    """A dev figure for a table: ``n/a`` where it was not measured (None, or NaN in older reports)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def dev_heading(row: dict[str, Any]) -> str:
    """The heading of a model card's dev table, saying when nothing was measured."""
    pairs = row.get("pairs", 0)
    if not pairs:
        return "## Dev pairs: not measured (the run had no dev queries: `--dev-queries 0`)"
    return f"## Dev pairs (dev-split queries, {pairs} pairs, never trained on)"


def _ndcg10(gains: list[float]) -> float:
    """nDCG@10 of gains listed in ranked order (the ideal order is the same gains sorted)."""

    def dcg(values: list[float]) -> float:
        return sum(max(g, 0.0) / math.log2(i + 2) for i, g in enumerate(values[:10]))

    ideal = dcg(sorted(gains, reverse=True))
    return dcg(gains) / ideal if ideal > 0 else 0.0
