"""Hop chains for training TreeHop, built from a BEIR folder whose questions have two or more supporting passages.

A question ``q`` with supporting passages ``{a, b}`` gives the chains ``(q, a -> b)`` and ``(q, b -> a)``: having
retrieved one supporting passage, the next query embedding should find the other. Questions are split by question,
never by chain, so no question is in two of the sets:

* held out for evaluation: the first ``holdout`` questions of ``eval_split`` in ``queries.jsonl`` order (never seen
  in training; ``hopmem eval retrieval --method treehop`` also skips every question listed in the model's
  ``data.json``);
* validation (early stopping): ``val_fraction`` of the remaining questions, drawn with ``seed``;
* training: the rest, from every split in ``train_splits``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hopmem.memory.datasets.beir import Query, load_dataset
from hopmem.memory.datasets.store_loader import CorpusVectors
from hopmem.memory.errors import InputError


@dataclass
class HopQuestion:
    """A question with its supporting documents (those present in the corpus)."""

    id: str
    text: str
    supporting: list[str]
    split: str


@dataclass
class HopSplits:
    """Questions per role, and the rule that made them (for the model card)."""

    train: list[HopQuestion]
    validation: list[HopQuestion]
    held_out: list[HopQuestion]
    rule: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "train_ids": [q.id for q in self.train],
            "validation_ids": [q.id for q in self.validation],
            "held_out_ids": [q.id for q in self.held_out],
        }


@dataclass
class HopChains:
    """Training chains as rows into the corpus matrix: query ``i`` retrieved ``first`` and must find ``target``."""

    query_index: NDArray[np.int64]
    first: NDArray[np.int64]
    target: NDArray[np.int64]
    gold_rows: list[set[int]]

    def __len__(self) -> int:
        return len(self.first)


def _questions(root: Path, split: str) -> list[HopQuestion]:
    data = load_dataset(root, split)
    corpus_ids = {d.id for d in data.corpus}
    out = []
    for query in data.queries:
        supporting = _supporting(query, data.qrels.get(query.id, {}), corpus_ids)
        if len(supporting) >= 2:
            out.append(HopQuestion(query.id, query.text, supporting, split))
    return out


def _supporting(query: Query, judged: dict[str, int], corpus_ids: set[str]) -> list[str]:
    meta = query.metadata.get("supporting") if isinstance(query.metadata, dict) else None
    listed = [str(d) for d in meta] if isinstance(meta, list) else [d for d, g in judged.items() if g > 0]
    return [d for d in dict.fromkeys(listed) if d in corpus_ids]


def split_questions(
    root: Path,
    *,
    train_splits: tuple[str, ...] = ("train", "dev"),
    eval_split: str = "dev",
    holdout: int = 250,
    val_fraction: float = 0.15,
    seed: int = 0,
) -> HopSplits:
    """Split the multi-hop questions of ``root`` into training, validation and held-out sets (see the module doc).

    Raises:
        InputError: when a split is missing or too few questions are left to train on.
    """
    root = Path(root)
    available = {p.stem for p in (root / "qrels").glob("*.tsv")}
    splits = [s for s in dict.fromkeys((*train_splits, eval_split)) if s in available]
    if eval_split not in available:
        raise InputError(f"{root} has no qrels/{eval_split}.tsv; choose --eval-split among {sorted(available)}.")
    by_split = {s: _questions(root, s) for s in splits}
    held_out = by_split[eval_split][:holdout]
    held_ids = {q.id for q in held_out}
    pool: dict[str, HopQuestion] = {}
    for split in train_splits:
        for question in by_split.get(split, []):
            if question.id not in held_ids:
                pool.setdefault(question.id, question)
    questions = list(pool.values())
    random.Random(seed).shuffle(questions)
    n_val = max(1, round(len(questions) * val_fraction)) if questions else 0
    validation, train = questions[:n_val], questions[n_val:]
    if len(train) < 8:
        raise InputError(
            f"Only {len(train)} multi-hop questions are left for training in {root}; lower --holdout or add a split."
        )
    rule = {
        "dataset": root.name,
        "train_splits": list(train_splits),
        "eval_split": eval_split,
        "holdout": f"the first {len(held_out)} questions of split {eval_split!r} in queries.jsonl order",
        "val_fraction": val_fraction,
        "seed": seed,
        "counts": {"train": len(train), "validation": len(validation), "held_out": len(held_out)},
    }
    return HopSplits(train, validation, held_out, rule)


def build_chains(questions: list[HopQuestion], vectors: CorpusVectors) -> HopChains:
    """Every ordered pair of distinct supporting documents of each question, as corpus-matrix rows."""
    rows = vectors.first_chunk_rows()
    q_index, first, target, golds = [], [], [], []
    for i, question in enumerate(questions):
        gold = [rows[d] for d in question.supporting if d in rows]
        golds.append(set(gold))
        for a in gold:
            for b in gold:
                if a != b:
                    q_index.append(i)
                    first.append(a)
                    target.append(b)
    return HopChains(
        np.asarray(q_index, dtype=np.int64),
        np.asarray(first, dtype=np.int64),
        np.asarray(target, dtype=np.int64),
        golds,
    )


def mine_hard_negatives(
    probes: NDArray[np.float32], matrix: NDArray[np.float32], exclude: list[set[int]], n: int
) -> NDArray[np.int64]:
    """The ``n`` corpus rows nearest to each probe vector, skipping that probe's excluded rows (its gold passages)."""
    scores = probes @ matrix.T
    for row, skip in enumerate(exclude):
        if skip:
            scores[row, list(skip)] = -np.inf
    take = min(n, matrix.shape[0] - 1)
    top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
    return top.astype(np.int64)
