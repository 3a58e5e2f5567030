"""Distillation groups for prorank's stage 2: soft labels from the shipped cross-encoder over training queries'
candidates (the real model; it runs on a CPU in a second)."""

from __future__ import annotations

import pytest

from hopmem.finetune.distill import distill_groups, soft_targets
from hopmem.finetune.reranker_data import HoldoutQuery


def test_soft_targets_are_a_tempered_softmax() -> None:
    sharp, flat = soft_targets([2.0, 0.0, -1.0], 0.5), soft_targets([2.0, 0.0, -1.0], 5.0)
    assert sum(sharp) == pytest.approx(1.0) and sum(flat) == pytest.approx(1.0)
    assert sharp[0] > flat[0] and sharp == sorted(sharp, reverse=True)


def test_groups_follow_the_teachers_order_and_always_hold_its_best(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hopmem.agents.rerank.cross_encoder import CrossEncoderReranker
    from hopmem.agents.rerank.model_paths import find_cross_encoder

    teacher = CrossEncoderReranker(find_cross_encoder(None, tmp_path))  # the shipped one
    texts = [
        "Bread is baked in an oven at high heat.",
        "The Seine is the river that flows through Paris.",
        "Tea is grown on hills in India.",
        "Oak trees grow slowly in cold climates.",
        "The Danube flows through Vienna and Budapest.",
    ]
    pool = HoldoutQuery("q", "Which river flows through Paris?", [f"d{i}" for i in range(5)], texts, {})
    groups = distill_groups([pool], teacher, n_groups=3, size=3, temperature=1.0, seed=0)
    assert len(groups) == 3  # one query, cycled with other samples of its candidates
    scores = teacher.score(pool.query, texts)
    best = texts[max(range(5), key=lambda i: scores[i])]
    assert best == texts[1]  # the teacher knows the answer, so its soft label is a useful target
    for query, passages, targets in groups:
        assert query == pool.query and len(passages) == 3 and best in passages
        assert sum(targets) == pytest.approx(1.0) and targets[passages.index(best)] == max(targets)
    assert distill_groups([pool], teacher, n_groups=3, size=3, seed=0) == groups  # seeded
    assert distill_groups([], teacher, n_groups=3) == []
