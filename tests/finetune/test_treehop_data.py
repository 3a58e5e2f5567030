"""Hop chains and question splits for TreeHop training: no question in two sets, the held-out rule as documented."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hopmem.finetune.treehop_data import build_chains, mine_hard_negatives, split_questions
from hopmem.memory.datasets.store_loader import CorpusVectors
from hopmem.memory.errors import InputError


def test_splits_are_disjoint_and_hold_out_the_first_eval_questions(small_hotpot: Path) -> None:
    splits = split_questions(small_hotpot, holdout=6, val_fraction=0.2, seed=1)
    dev_order = [
        json.loads(line)["_id"]
        for line in (small_hotpot / "queries.jsonl").read_text().splitlines()
        if json.loads(line)["metadata"]["split"] == "dev"
    ]
    assert [q.id for q in splits.held_out] == dev_order[:6]
    sets = [{q.id for q in part} for part in (splits.train, splits.validation, splits.held_out)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert sum(len(s) for s in sets) == 24  # 16 dev + 8 train, each exactly once
    assert {q.split for q in splits.train} == {"dev", "train"}
    assert splits.rule["counts"] == {"train": len(sets[0]), "validation": len(sets[1]), "held_out": 6}
    # Same seed, same split; another seed, another validation draw.
    again = split_questions(small_hotpot, holdout=6, val_fraction=0.2, seed=1)
    assert [q.id for q in again.validation] == [q.id for q in splits.validation]
    other = split_questions(small_hotpot, holdout=6, val_fraction=0.2, seed=2)
    assert {q.id for q in other.validation} != sets[1]


def test_split_errors_are_clear(small_hotpot: Path) -> None:
    with pytest.raises(InputError, match=r"no qrels/test\.tsv"):
        split_questions(small_hotpot, eval_split="test")
    with pytest.raises(InputError, match="left for training"):
        split_questions(small_hotpot, train_splits=("dev",), holdout=15)


def test_chains_pair_every_supporting_passage_both_ways(small_hotpot: Path) -> None:
    splits = split_questions(small_hotpot, holdout=0, val_fraction=0.1)
    docs = sorted({d for q in splits.train for d in q.supporting})
    vectors = CorpusVectors(np.arange(1, len(docs) + 1), docs, np.eye(len(docs), dtype=np.float32))
    chains = build_chains(splits.train, vectors)
    rows = vectors.first_chunk_rows()
    assert len(chains) == sum(len(q.supporting) * (len(q.supporting) - 1) for q in splits.train)
    for qi, a, b in zip(chains.query_index, chains.first, chains.target, strict=True):
        gold = {rows[d] for d in splits.train[qi].supporting}
        assert a != b and {int(a), int(b)} <= gold


def test_hard_negatives_are_near_but_never_gold() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(50, 8)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    probes = matrix[[0, 1]]
    negatives = mine_hard_negatives(probes, matrix, [{0, 7}, set()], 5)
    assert negatives.shape == (2, 5)
    assert 0 not in negatives[0] and 7 not in negatives[0]
    assert 1 in negatives[1]  # nothing excluded: the probe itself is its nearest row
    nearest = [int(j) for j in np.argsort(-(matrix @ probes[0])) if j not in (0, 7)]
    assert set(negatives[0].tolist()) == set(nearest[:5])
