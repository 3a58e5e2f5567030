"""Hop chains for training TreeHop, built from one or more BEIR folders whose questions have two or more supporting
passages.

A question ``q`` with supporting passages ``{a, b}`` gives the chains ``(q, a -> b)`` and ``(q, b -> a)``: having
retrieved one supporting passage, the next query embedding should find the other. Several folders train together
(``hopmem finetune treehop --dataset A --dataset B``): their corpora are searched as one, and when there is more than
one folder every document id is namespaced as ``<folder name>/<id>`` so that ``hx3`` of one folder cannot be taken
for ``hx3`` of another (question ids stay as they are, so that ``data.json`` lists the ids evaluation sees; a
question id met again in a later folder is skipped and counted). Questions are split by question, never by chain, so
no question is in two of the sets:

* held out for evaluation: the first ``holdout`` questions of ``eval_split`` in ``queries.jsonl`` order, in every
  folder that has that split (never seen in training; ``hopmem eval retrieval --method treehop`` also skips every
  question listed in the model's ``data.json``);
* validation (early stopping): ``val_fraction`` of the remaining questions, drawn with ``seed``;
* test (the measured rule that decides whether the agent uses the trained model, see
  :func:`hopmem.agents.treehop_model.measured_choice`): ``test_fraction`` of them, drawn with the same shuffle and
  never used for training or early stopping;
* training: the rest, from every split in ``train_splits`` that a folder has (all its judged questions).

Each question also carries its own context paragraphs (hard negatives: same topic, not supporting), from the first
source a folder offers: ``metadata.context`` (a list of document ids), judgements of grade 0 in any qrels file, or,
for folders laid out like HotpotQA's distractor setting (each question's paragraphs stored together, in question
order, as in ``hotpotqa`` and ``hotpotqa-extra``), the run of paragraphs inferred by :func:`infer_context_blocks`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hopmem.memory.datasets.beir import Query, iter_corpus, load_dataset, load_qrels, load_queries
from hopmem.memory.datasets.store_loader import CorpusVectors
from hopmem.memory.errors import InputError

CONTEXT_SIZE = 10
"""Paragraphs per question in HotpotQA's distractor setting (2 supporting + 8 distractors)."""
PLACED_SHARE = 0.8
"""Share of a folder's questions whose supporting paragraphs must fit the inferred blocks for the layout to count."""


@dataclass
class HopQuestion:
    """A question with its supporting documents and its own context paragraphs (ids as the merged corpus names them).

    Args:
        id: the question id of its folder.
        text: the question.
        supporting: supporting documents present in the corpus.
        split: the qrels split it came from.
        dataset: the folder's name.
        context: the question's own non-supporting paragraphs (hard negatives; may be empty).
    """

    id: str
    text: str
    supporting: list[str]
    split: str
    dataset: str = ""
    context: list[str] = field(default_factory=list)


@dataclass
class HopSplits:
    """Questions per role, and the rule that made them (for the model card)."""

    train: list[HopQuestion]
    validation: list[HopQuestion]
    held_out: list[HopQuestion]
    rule: dict[str, Any] = field(default_factory=dict)
    test: list[HopQuestion] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "train_ids": [q.id for q in self.train],
            "validation_ids": [q.id for q in self.validation],
            "test_ids": [q.id for q in self.test],
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


def doc_key(dataset: str, doc: str, *, namespaced: bool) -> str:
    """The id of ``doc`` in the merged corpus: ``<folder>/<id>`` when several folders train together."""
    return f"{dataset}/{doc}" if namespaced else doc


def folder_names(roots: Sequence[Path]) -> list[str]:
    """A distinct name per folder (its directory name; ``name~2``... when two folders share one)."""
    names: list[str] = []
    for root in roots:
        name, n = Path(root).resolve().name, 1
        while name in names:
            n += 1
            name = f"{Path(root).resolve().name}~{n}"
        names.append(name)
    return names


def infer_context_blocks(
    questions: Sequence[tuple[str, Sequence[str]]], corpus_order: Sequence[str], size: int = CONTEXT_SIZE
) -> dict[str, list[str]]:
    """Each question's context paragraphs in a corpus that stores every question's paragraphs together, in order.

    HotpotQA's distractor setting gives a question ``size`` paragraphs (2 supporting); a folder built from it and
    deduplicated lists them in question order, so the block of question ``k`` starts where question ``k-1``'s ended
    and holds at most ``size`` paragraphs, ending before the next question's first supporting paragraph. A question
    whose supporting paragraphs do not fit that block (listed earlier by deduplication, or too far apart) gets no
    context. The inference is checked, not assumed: when fewer than :data:`PLACED_SHARE` of the questions fit, the
    folder is not laid out this way and no question gets a context.

    Args:
        questions: ``(question id, supporting document ids)`` in ``queries.jsonl`` order.
        corpus_order: document ids in ``corpus.jsonl`` order.
        size: paragraphs per question.

    Returns:
        Question id -> its context document ids (supporting ones excluded), for the questions that fit.
    """
    pos = {d: i for i, d in enumerate(corpus_order)}
    golds = [sorted(pos[d] for d in sup if d in pos) for _, sup in questions]
    out: dict[str, list[str]] = {}
    start = 0
    for k, ((qid, supporting), gold) in enumerate(zip(questions, golds, strict=True)):
        if not gold or gold[0] < start or gold[-1] >= start + size:
            if gold and gold[-1] >= start:
                start = gold[-1] + 1
            continue
        following = golds[k + 1] if k + 1 < len(golds) else []
        end = min(start + size, following[0]) if following and following[0] > gold[-1] else start + size
        keep = set(supporting)
        out[qid] = [d for d in corpus_order[start:end] if d not in keep]
        start = end
    if len(out) < PLACED_SHARE * max(1, len(questions)):
        return {}
    return out


def folder_contexts(root: Path) -> tuple[dict[str, list[str]], str]:
    """Every question's context paragraphs in ``root`` and where they came from (see the module doc)."""
    queries = load_queries(root / "queries.jsonl")
    qrels: dict[str, dict[str, int]] = {}
    for path in sorted((root / "qrels").glob("*.tsv")):
        for qid, judged in load_qrels(path).items():
            qrels.setdefault(qid, {}).update(judged)
    listed = {
        q.id: [str(d) for d in q.metadata["context"]]
        for q in queries
        if isinstance(q.metadata, dict) and isinstance(q.metadata.get("context"), list)
    }
    if listed:
        return listed, "metadata.context"
    graded_zero = {qid: [d for d, g in judged.items() if g <= 0] for qid, judged in qrels.items()}
    graded_zero = {qid: docs for qid, docs in graded_zero.items() if docs}
    if graded_zero:
        return graded_zero, "qrels grade 0"
    corpus_ids = [doc.id for doc in iter_corpus(root / "corpus.jsonl")]
    order = [(q.id, _supporting(q, qrels.get(q.id, {}), set(corpus_ids))) for q in queries]
    inferred = infer_context_blocks(order, corpus_ids)
    return inferred, ("inferred from the corpus order (distractor-setting blocks)" if inferred else "none")


def _questions(
    root: Path, split: str, name: str, namespaced: bool, contexts: dict[str, list[str]]
) -> list[HopQuestion]:
    data = load_dataset(root, split)
    corpus_ids = {d.id for d in data.corpus}
    out = []
    for query in data.queries:
        supporting = _supporting(query, data.qrels.get(query.id, {}), corpus_ids)
        if len(supporting) >= 2:
            context = [doc_key(name, d, namespaced=namespaced) for d in contexts.get(query.id, []) if d in corpus_ids]
            keys = [doc_key(name, d, namespaced=namespaced) for d in supporting]
            out.append(HopQuestion(query.id, query.text, keys, split, name, context))
    return out


def folder_questions(root: Path, split: str) -> list[HopQuestion]:
    """The questions of ``split`` in ``root`` with 2+ supporting passages (ids as the folder names them, no context)."""
    return _questions(root, split, Path(root).resolve().name, False, {})


def _supporting(query: Query, judged: dict[str, int], corpus_ids: set[str]) -> list[str]:
    meta = query.metadata.get("supporting") if isinstance(query.metadata, dict) else None
    listed = [str(d) for d in meta] if isinstance(meta, list) else [d for d, g in judged.items() if g > 0]
    return [d for d in dict.fromkeys(listed) if d in corpus_ids]


def split_questions(
    roots: Path | str | Sequence[Path | str],
    *,
    train_splits: tuple[str, ...] = ("train", "dev"),
    eval_split: str = "dev",
    holdout: int = 250,
    val_fraction: float = 0.15,
    test_fraction: float = 0.0,
    seed: int = 0,
) -> HopSplits:
    """Split the multi-hop questions of one or more folders into training, validation, test and held-out sets.

    Raises:
        InputError: when no folder has ``eval_split`` or too few questions are left to train on.
    """
    folders = [Path(roots)] if isinstance(roots, str | Path) else [Path(r) for r in roots]
    if not folders:
        raise InputError("Give at least one BEIR folder to train TreeHop on.")
    names = folder_names(folders)
    namespaced = len(folders) > 1
    held_out: list[HopQuestion] = []
    pool: dict[str, HopQuestion] = {}
    sources: dict[str, str] = {}
    duplicates = 0
    has_eval = False
    for root, name in zip(folders, names, strict=True):
        available = {p.stem for p in (root / "qrels").glob("*.tsv")}
        contexts, sources[name] = folder_contexts(root)
        held_ids: set[str] = set()
        if eval_split in available:
            has_eval = True
            held = _questions(root, eval_split, name, namespaced, contexts)[:holdout]
            held_out += held
            held_ids = {q.id for q in held}
        for split in train_splits:
            if split not in available:
                continue
            for question in _questions(root, split, name, namespaced, contexts):
                if question.id in held_ids:
                    continue
                if question.id in pool and pool[question.id].dataset != name:
                    duplicates += 1
                    continue
                pool.setdefault(question.id, question)
    if not has_eval:
        raise InputError(
            f"{', '.join(str(f) for f in folders)}: no qrels/{eval_split}.tsv in any folder; choose another "
            "--eval-split."
        )
    held_all = {q.id for q in held_out}
    questions = [q for q in pool.values() if q.id not in held_all]
    random.Random(seed).shuffle(questions)
    n_val = max(1, round(len(questions) * val_fraction)) if questions else 0
    n_test = round(len(questions) * test_fraction)
    validation, test, train = (
        questions[:n_val],
        questions[n_val : n_val + n_test],
        questions[n_val + n_test :],
    )
    if len(train) < 8:
        raise InputError(
            f"Only {len(train)} multi-hop questions are left for training in {', '.join(names)}; lower --holdout "
            "or add a split or a folder."
        )
    counts = {"train": len(train), "validation": len(validation), "held_out": len(held_out)}
    if test_fraction:
        counts["test"] = len(test)
    rule: dict[str, Any] = {
        "dataset": ", ".join(names),
        "train_splits": list(train_splits),
        "eval_split": eval_split,
        "holdout": f"the first {holdout} questions of split {eval_split!r} in queries.jsonl order "
        f"({len(held_out)} held out)",
        "val_fraction": val_fraction,
        "seed": seed,
        "counts": counts,
    }
    if namespaced:
        rule["datasets"] = names
        rule["per_dataset"] = {n: sum(q.dataset == n for q in train) for n in names}
        rule["duplicate_questions_skipped"] = duplicates
    if test_fraction:
        rule["test_fraction"] = test_fraction
    rule["context_source"] = sources
    return HopSplits(train, validation, held_out, rule, test)


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


def listed_negatives(
    lists: Sequence[Sequence[str]],
    vectors: CorpusVectors,
    exclude: Sequence[set[int]],
    n: int,
    fallback: NDArray[np.int64],
) -> NDArray[np.int64]:
    """``n`` negatives per question as corpus rows, from its listed documents (context or hybrid candidates), in order.

    A question whose list gives fewer than ``n`` usable rows (gold rows and unknown documents are skipped) is padded
    with its row of ``fallback`` (dense neighbours), so every question contributes ``n`` columns.
    """
    rows = vectors.first_chunk_rows()
    out = np.empty((len(lists), n), dtype=np.int64)
    for i, (docs, skip) in enumerate(zip(lists, exclude, strict=True)):
        listed = [rows[d] for d in docs if d in rows] + [int(r) for r in fallback[i]]
        usable = [r for r in dict.fromkeys(listed) if r not in skip]
        out[i] = np.resize(np.asarray(usable or [int(fallback[i][0])], dtype=np.int64), n)
    return out


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


def merge_vectors(parts: Sequence[CorpusVectors], names: Sequence[str]) -> CorpusVectors:
    """One corpus from several folders' vectors: memory ids made distinct, document ids namespaced (when several)."""
    if len(parts) == 1:
        return parts[0]
    ids, docs, matrices, offset = [], [], [], 0
    for part, name in zip(parts, names, strict=True):
        ids.append(np.asarray(part.memory_ids, dtype=np.int64) + offset)
        docs += [doc_key(name, d, namespaced=True) for d in part.doc_ids]
        matrices.append(part.matrix)
        offset += int(np.max(part.memory_ids, initial=0)) + 1
    return CorpusVectors(np.concatenate(ids), docs, np.concatenate(matrices, axis=0).astype(np.float32))
