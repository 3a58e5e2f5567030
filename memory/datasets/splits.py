"""Query splits of a BEIR folder without leakage, shared by reranker training and evaluation.

- a folder whose qrels have a ``train`` split trains on it and evaluates on ``dev`` (else ``test``); a query judged
  in both is kept out of training; a folder with only a ``train`` split (training data such as hotpotqa-extra)
  trains on all of it and has no dev queries;
- a folder with one split (Cranfield: ``test`` only) is divided in query-id order (numeric ids numerically): the
  first two thirds train, the rest dev (Cranfield: queries 1-100 train, 101-150 dev).

:func:`query_splits` records which ids went where, and :func:`load_split` gives the judgements of a derived split.
It lives in ``memory`` because both ``finetune`` (training) and ``sdk`` (evaluation) must split exactly alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hopmem.memory.datasets.beir import load_qrels, load_queries
from hopmem.memory.errors import InputError

TRAIN_FRACTION = 2 / 3


@dataclass
class QuerySplits:
    """Which judged queries of one data set train and which evaluate (``dev``), and by which rule."""

    dataset: str
    rule: str
    train: dict[str, dict[str, int]]
    dev: dict[str, dict[str, int]]
    texts: dict[str, str] = field(repr=False)
    source: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record saved beside a trained model (``data.json``)."""
        return {
            "dataset": self.dataset,
            "rule": self.rule,
            "source_splits": self.source,
            "train_ids": list(self.train),
            "dev_ids": list(self.dev),
        }


def _id_order(ids: list[str], file_order: dict[str, int]) -> list[str]:
    """Query-id order: numerically when every id is a number, else the order of ``queries.jsonl``."""
    if ids and all(i.isdigit() for i in ids):
        return sorted(ids, key=int)
    return sorted(ids, key=lambda i: (file_order.get(i, len(file_order)), i))


def query_splits(root: Path | str, *, train_fraction: float = TRAIN_FRACTION) -> QuerySplits:
    """The train/dev query split of a BEIR folder (see the module docstring for the rule).

    Raises:
        InputError: when the folder has no qrels or no judged query is left for one side.
    """
    root = Path(root)
    qrels_dir = root / "qrels"
    files = sorted(qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if not files or not (root / "queries.jsonl").is_file():
        raise InputError(f"{root} needs queries.jsonl and qrels/<split>.tsv files (BEIR layout).")
    queries = load_queries(root / "queries.jsonl")
    texts = {q.id: q.text for q in queries}
    file_order = {q.id: n for n, q in enumerate(queries)}
    splits = {p.stem: load_qrels(p) for p in files}
    if "train" in splits:
        eval_name = (
            "dev"
            if "dev" in splits
            else next((s for s in ("test", *sorted(splits)) if s in splits and s != "train"), "")
        )
        train = {q: j for q, j in splits["train"].items() if q in texts}
        dev = {q: j for q, j in splits.get(eval_name, {}).items() if q in texts}
        overlap = set(train) & set(dev)
        for qid in overlap:  # evaluation wins: a query judged in both is never trained on
            del train[qid]
        rule = (
            "train: qrels split 'train'; dev: "
            + (f"qrels split {eval_name!r}" if eval_name else "none")
            + (f" ({len(overlap)} queries judged in both kept out of training)" if overlap else "")
        )
        source = {"train": "train", "dev": eval_name}
    else:
        name = max(splits, key=lambda s: (len(splits[s]), s == "test"))
        judged = {q: j for q, j in splits[name].items() if q in texts}
        ordered = _id_order(list(judged), file_order)
        cut = round(len(ordered) * train_fraction)
        train = {q: judged[q] for q in ordered[:cut]}
        dev = {q: judged[q] for q in ordered[cut:]}
        first, last = (ordered[0], ordered[cut - 1]) if cut else ("-", "-")
        rule = (
            f"one qrels split ({name!r}), divided in query-id order: the first {cut} of {len(ordered)} queries "
            f"({first}..{last}) train, the other {len(ordered) - cut} dev"
        )
        source = {"train": name, "dev": name}
    if not train or (not dev and source["dev"]):
        raise InputError(f"{root} leaves no judged query for training or for dev; it needs more judged queries.")
    return QuerySplits(root.resolve().name, rule, train, dev, texts, source)


def load_split(root: Path | str, split: str) -> tuple[list[tuple[str, str]], dict[str, dict[str, int]], str]:
    """The ``(query id, text)`` list and judgements of ``split``: a qrels file, else the derived ``train``/``dev``.

    Returns:
        ``(queries, qrels, how)`` where ``how`` says where the split came from.

    Raises:
        InputError: when the split is neither a qrels file nor a derived split.
    """
    root = Path(root)
    path = root / "qrels" / f"{split}.tsv"
    if path.is_file():
        qrels = load_qrels(path)
        queries = [(q.id, q.text) for q in load_queries(root / "queries.jsonl") if q.id in qrels]
        return queries, qrels, f"qrels/{split}.tsv"
    if split in ("train", "dev"):
        splits = query_splits(root)
        chosen = splits.train if split == "train" else splits.dev
        return [(q, splits.texts[q]) for q in chosen], chosen, f"derived: {splits.rule}"
    have = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
    raise InputError(f"{root} has no qrels/{split}.tsv (splits here: {', '.join(have) or 'none'}); pick one of them.")
