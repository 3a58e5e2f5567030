"""Questions for training the query decomposer, their held-out share and their curriculum stage.

The decomposer (:mod:`hopmem.finetune.decomposer`) learns from multi-hop questions whose supporting passages are
known: BEIR folders with ``metadata.supporting`` or qrels, read with the TreeHop reader
(:func:`hopmem.finetune.treehop_data.folder_questions`, questions with two or more supporting passages). Each folder
keeps its own corpus (the reward searches the folder the question came from), so document ids are not namespaced.

Questions are split by question, seeded: ``holdout`` of them choose the checkpoint (never trained on), the rest
train, except the questions reserved for evaluation (``--reserve NAME=N``: the first N judged questions of a folder,
the ones ``hopmem eval qa --max-queries N`` runs), which are in neither. The curriculum stage of a training question
is *measured*, not hand-labelled: the memory's hybrid search runs the whole question once
(:meth:`hopmem.finetune.decomposer_reward.PlanEnvironment.whole_recall`) and

* ``single``: its top ``k`` (10) already holds every supporting passage - one search suffices;
* ``easy``: not in the top ``k``, but within the top ``deep_k`` (30) - an easy bridge (the second passage is near);
* ``hard``: some supporting passage is not even in the top ``deep_k`` - the harder multi-hop ones.

ACQO's two-stage curriculum then trains stage 1 on ``single`` + ``easy`` and stage 2 on every stage.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hopmem.finetune.treehop_data import folder_questions
from hopmem.memory.errors import InputError

Stage = Literal["single", "easy", "hard"]
STAGE1: tuple[Stage, ...] = ("single", "easy")
"""The stages curriculum stage 1 trains on; stage 2 trains on every stage."""


@dataclass
class DecomposerQuestion:
    """One training question.

    Args:
        id: the question id of its folder.
        text: the question.
        supporting: its supporting document ids (in its folder's corpus).
        dataset: the folder's path (the corpus the reward searches).
        stage: its measured curriculum stage ("" until measured).
        whole_recall: recall@k of the whole question's own search, and at the deeper cut (set when measured).
    """

    id: str
    text: str
    supporting: list[str]
    dataset: str
    stage: str = ""
    whole_recall: dict[str, float] = field(default_factory=dict)


@dataclass
class DecomposerData:
    """Training and held-out questions, and how they were chosen (recorded in ``data.json``)."""

    train: list[DecomposerQuestion]
    holdout: list[DecomposerQuestion]
    rule: dict[str, Any] = field(default_factory=dict)
    reserved: dict[str, list[str]] = field(default_factory=dict)

    def stage_counts(self) -> dict[str, int]:
        """Training questions per measured stage."""
        counts: dict[str, int] = {}
        for q in self.train:
            counts[q.stage] = counts.get(q.stage, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "train_ids": [q.id for q in self.train],
            "holdout_ids": [q.id for q in self.holdout],
            "reserved_ids": self.reserved,
            "stages": {q.id: q.stage for q in self.train},
        }


def read_questions(datasets: Sequence[str], splits: Sequence[str]) -> list[DecomposerQuestion]:
    """Every question of ``splits`` with 2+ supporting passages, from each folder that has the split.

    A question id met again (in a later split or folder) is skipped, so no question counts twice.

    Raises:
        InputError: when no folder yields a question.
    """
    out: list[DecomposerQuestion] = []
    seen: set[str] = set()
    for folder in datasets:
        root = Path(folder).expanduser()
        for split in splits:
            if not (root / "qrels" / f"{split}.tsv").is_file():
                continue
            for q in folder_questions(root, split):
                if q.id not in seen:
                    seen.add(q.id)
                    out.append(DecomposerQuestion(q.id, q.text, list(q.supporting), str(root)))
    if not out:
        raise InputError(
            f"No question with 2+ supporting passages in splits {', '.join(splits)} of {', '.join(datasets)}."
        )
    return out


def reserved_ids(datasets: Sequence[str], splits: Sequence[str], reserve: Sequence[str]) -> dict[str, Any]:
    """The questions kept out of training for evaluation: for each ``NAME=N`` of ``reserve``, the first ``N`` judged
    questions of the folder named ``NAME`` in its first split of ``splits`` - exactly the ones
    ``hopmem eval qa --dataset <folder> --split <split> --max-queries N`` runs, so that evaluation sees no question
    the decomposer trained on or chose its checkpoint with.

    Returns:
        ``{name: {"split", "first", "ids"}}``.

    Raises:
        InputError: on a malformed entry or a name that is no given folder.
    """
    from hopmem.memory.datasets.beir import load_dataset

    out: dict[str, Any] = {}
    for entry in reserve:
        name, _, count = entry.partition("=")
        if not count.strip().isdigit():
            raise InputError(f"--reserve takes NAME=N (a folder name and a question count), not {entry!r}.")
        roots = [Path(d).expanduser() for d in datasets if Path(d).expanduser().resolve().name == name.strip()]
        if not roots:
            raise InputError(f"--reserve names {name!r}, which is none of the training folders.")
        split = next((s for s in splits if (roots[0] / "qrels" / f"{s}.tsv").is_file()), None)
        if split is None:
            raise InputError(f"{roots[0]} has none of the splits {', '.join(splits)} to reserve questions from.")
        first = int(count)
        ids = [q.id for q in load_dataset(roots[0], split).queries[:first]]
        out[name.strip()] = {"split": split, "first": first, "ids": ids}
    return out


def split_holdout(
    questions: list[DecomposerQuestion],
    *,
    holdout: int,
    max_train: int,
    seed: int,
    reserved: dict[str, Any] | None = None,
) -> DecomposerData:
    """A seeded split by question: ``holdout`` questions to choose the checkpoint, at most ``max_train`` to train;
    the ``reserved`` questions (:func:`reserved_ids`) are in neither.

    Raises:
        InputError: when nothing is left to train on.
    """
    kept_out = {(name, i) for name, r in (reserved or {}).items() for i in r["ids"]}
    order = [q for q in questions if (Path(q.dataset).resolve().name, q.id) not in kept_out]
    random.Random(seed).shuffle(order)
    held, rest = order[:holdout], order[holdout:]
    train = rest[:max_train] if max_train > 0 else rest
    if not train:
        raise InputError(f"{len(questions)} questions leave none to train on after holding out {holdout}.")
    rule: dict[str, Any] = {"seed": seed, "holdout": len(held), "train": len(train), "available": len(questions)}
    if reserved:
        rule["reserved"] = {n: {"split": r["split"], "first": r["first"]} for n, r in reserved.items()}
        rule["reserved_questions"] = len(questions) - len(order)
    data = DecomposerData(train, held, rule)
    data.reserved = {n: list(r["ids"]) for n, r in (reserved or {}).items()}
    return data


def stage_of(recall_k: float, recall_deep: float) -> Stage:
    """The measured stage of a question from its whole-question recall at ``k`` and at the deeper cut."""
    if recall_k >= 1.0:
        return "single"
    if recall_deep >= 1.0:
        return "easy"
    return "hard"


def assign_stages(
    questions: Sequence[DecomposerQuestion], measure: Callable[[DecomposerQuestion], tuple[float, float]]
) -> None:
    """Set each question's ``stage`` and ``whole_recall`` from ``measure`` (recall@k, recall@deep of the whole
    question's own search)."""
    for q in questions:
        at_k, deep = measure(q)
        q.whole_recall = {"k": round(at_k, 4), "deep": round(deep, 4)}
        q.stage = stage_of(at_k, deep)


def curriculum(questions: Sequence[DecomposerQuestion], stage: int, seed: int) -> list[DecomposerQuestion]:
    """Stage 1: the ``single`` and ``easy`` questions; stage 2: all of them; each in a seeded order."""
    chosen = [q for q in questions if stage >= 2 or q.stage in STAGE1]
    random.Random(seed + stage).shuffle(chosen)
    return chosen
