"""Training data for rerankers from any BEIR folder: query splits without leakage, positives, mined hard negatives.

Splits are by query, so no question is both trained on and evaluated on:

- a folder whose qrels have a ``train`` split trains on it and evaluates on ``dev`` (else ``test``); a query judged
  in both is kept out of training;
- a folder with one split (Cranfield: ``test`` only) is divided in query-id order (numeric ids numerically): the
  first two thirds train, the rest dev (Cranfield: queries 1-100 train, 101-150 dev).

:func:`query_splits` records which ids went where, and :func:`load_split` gives the judgements of a derived split
(so ``hopmem eval rerank --split dev`` works on Cranfield).

Positives come from the qrels with their grades kept (label = grade / the data set's top grade). Hard negatives are
mined with the memory's own hybrid search over the indexed corpus (bm25 + dense, fused): passages that rank near the
top for the query without being judged relevant, drawn at random (seeded) from the top ``mine_depth`` documents.
Judged passages with grade 0 are negatives too. Unjudged passages are not known to be irrelevant (Cranfield's
judgements are incomplete), which is why negatives are sampled from the top ranks instead of always taking the top.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.agents.rerank import passage_text
from hopmem.memory.beir import iter_corpus, load_qrels, load_queries
from hopmem.memory.beir_store import BEIR_TENANT, open_indexed_corpus
from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import HybridSearcher

if TYPE_CHECKING:
    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)

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
        eval_name = "dev" if "dev" in splits else next((s for s in ("test", *sorted(splits)) if s != "train"), "")
        train = {q: j for q, j in splits["train"].items() if q in texts}
        dev = {q: j for q, j in splits.get(eval_name, {}).items() if q in texts}
        overlap = set(train) & set(dev)
        for qid in overlap:  # evaluation wins: a query judged in both is never trained on
            del train[qid]
        rule = f"train: qrels split 'train'; dev: qrels split {eval_name!r}" + (
            f" ({len(overlap)} queries judged in both kept out of training)" if overlap else ""
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
    if not train or not dev:
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


@dataclass(frozen=True)
class RerankPair:
    """One training example: a query, a passage and its label in [0, 1]."""

    query_id: str
    query: str
    doc_id: str
    text: str
    label: float
    kind: str  # "positive", "judged-negative" or "hard-negative"


def corpus_texts(root: Path | str) -> dict[str, str]:
    """Document id -> the text a reranker reads (:func:`hopmem.agents.rerank.passage_text`)."""
    return {d.id: passage_text(d.title, d.text) for d in iter_corpus(Path(root) / "corpus.jsonl")}


def mine_negatives(
    root: Path | str,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    depth: int = 30,
    progress: bool = True,
) -> dict[str, list[str]]:
    """Per query, the documents hybrid search ranks in its top ``depth`` that are not judged relevant, in rank order."""
    from tqdm.auto import tqdm

    store = open_indexed_corpus(
        Path(root), embedder, cache_dir=cache_dir, chunk_size=chunk_size, chunk_overlap=chunk_overlap, progress=progress
    )
    try:
        searcher = HybridSearcher(store, embedder, depth=max(depth * 2, 30))
        mined: dict[str, list[str]] = {}
        for qid, text in tqdm(queries.items(), desc="mining negatives", unit="q", disable=not progress, leave=False):
            hits = searcher.search(BEIR_TENANT, text, k=depth * 3, mode="hybrid")
            docs = list(dict.fromkeys(h.record.external_id for h in hits if h.record.external_id))[:depth]
            judged = qrels.get(qid, {})
            mined[qid] = [d for d in docs if judged.get(d, 0) <= 0]
    finally:
        store.close()
    return mined


def build_pairs(
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    negatives: dict[str, list[str]],
    texts: dict[str, str],
    *,
    max_positives: int,
    n_negatives: int,
    seed: int,
    max_grade: int | None = None,
) -> list[RerankPair]:
    """Labelled pairs: per query the ``max_positives`` best-graded positives and ``n_negatives`` negatives.

    Labels are ``grade / max_grade`` (graded judgements kept), 0 for negatives. Judged grade-0 passages are used as
    negatives before mined ones; mined negatives are drawn at random (seeded) from the query's list.
    """
    rng = random.Random(seed)
    top = max_grade or max((g for judged in qrels.values() for g in judged.values()), default=1)
    top = max(top, 1)
    pairs: list[RerankPair] = []
    for qid, text in queries.items():
        judged = qrels.get(qid, {})
        positives = [d for d, g in judged.items() if g > 0 and d in texts]
        rng.shuffle(positives)
        positives.sort(key=lambda d: -judged[d])  # stable: equal grades stay in their shuffled order
        for doc in positives[:max_positives]:
            pairs.append(RerankPair(qid, text, doc, texts[doc], min(judged[doc] / top, 1.0), "positive"))
        explicit = [d for d, g in judged.items() if g <= 0 and d in texts]
        mined = [d for d in negatives.get(qid, []) if d in texts and d not in judged]
        rng.shuffle(explicit)
        chosen = explicit[:n_negatives]
        chosen += rng.sample(mined, min(len(mined), n_negatives - len(chosen)))
        for doc in chosen:
            kind = "judged-negative" if doc in judged else "hard-negative"
            pairs.append(RerankPair(qid, text, doc, texts[doc], 0.0, kind))
    return pairs
