"""Soft labels for the prorank recipe's stage 2: the cross-encoder's blended scores over unjudged candidate pairs.

The qrels give a few hundred judged pairs; every training query also has 30 hybrid candidates, most of them never
judged. The cross-encoder (the agent's default reranker, blended with the fused order) scores all of them; its scores
are a teacher that costs no labels (distillation, as in listwise knowledge distillation for rerankers). A
distillation group is ``size`` of one training query's candidates (seeded sample, the top one always in); its target
is ``softmax(teacher / temperature)`` over the group, and stage 2's listwise loss (cross-entropy against the target)
trains the student's ``logit("1") - logit("0")`` toward the teacher's order. Only training-split queries are used,
never a held-out or dev one.

The teacher scores each query's candidates in their hybrid order, so its blend with that order applies as in the
agent; its saved blend weight is read from its folder.
"""

from __future__ import annotations

import logging
import math
import random
from typing import Protocol

from hopmem.finetune.reranker_data import HoldoutQuery

log = logging.getLogger(__name__)


class Teacher(Protocol):
    """Anything with a reranker's ``score``."""

    def score(self, query: str, docs: list[str]) -> list[float]: ...


def soft_targets(scores: list[float], temperature: float) -> list[float]:
    """``softmax(scores / temperature)`` (sums to 1)."""
    t = max(temperature, 1e-6)
    top = max(scores)
    exps = [math.exp((s - top) / t) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def distill_groups(
    pools: list[HoldoutQuery],
    teacher: Teacher,
    *,
    n_groups: int,
    size: int = 4,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[tuple[str, tuple[str, ...], tuple[float, ...]]]:
    """Up to ``n_groups`` groups (query, passages, soft targets) from the training queries' candidate lists.

    Queries are drawn in a seeded order (cycled when there are fewer than ``n_groups``, each time with another
    sample of its candidates); each query's candidates are scored by the teacher once.
    """
    rng = random.Random(seed)
    usable = [p for p in pools if len(p.texts) >= 2]
    if not usable or n_groups <= 0:
        return []
    scored: dict[str, list[float]] = {}
    out: list[tuple[str, tuple[str, ...], tuple[float, ...]]] = []
    order: list[HoldoutQuery] = []
    while len(order) < n_groups:
        batch = list(usable)
        rng.shuffle(batch)
        order += batch
    for pool in order[:n_groups]:
        if pool.query_id not in scored:
            scored[pool.query_id] = [float(v) for v in teacher.score(pool.query, list(pool.texts))]
        scores = scored[pool.query_id]
        best = max(range(len(scores)), key=lambda i: scores[i])
        rest = [i for i in range(len(scores)) if i != best]
        chosen = [best, *rng.sample(rest, min(len(rest), size - 1))]
        rng.shuffle(chosen)
        targets = soft_targets([scores[i] for i in chosen], temperature)
        out.append((pool.query, tuple(pool.texts[i] for i in chosen), tuple(targets)))
    log.info("distillation: %d groups from %d training queries' candidates", len(out), len(scored))
    return out
