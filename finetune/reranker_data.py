"""Training data for rerankers from any BEIR folder: query splits without leakage, positives, mined hard negatives.

Splits are by query, so no question is both trained on and evaluated on; the rule lives in
:mod:`hopmem.memory.query_splits`, shared with ``hopmem eval rerank`` so evaluation splits exactly as training did.

Positives come from the qrels with their grades kept (label = grade / the data set's top grade). Hard negatives are
mined with the memory's own hybrid search over the indexed corpus (bm25 + dense, fused): passages that rank near the
top for the query without being judged relevant, drawn at random (seeded) from the top ``mine_depth`` documents.
Judged passages with grade 0 are negatives too. Unjudged passages are not known to be irrelevant (Cranfield's
judgements are incomplete), which is why negatives are sampled from the top ranks instead of always taking the top.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hopmem.agents.rerank import passage_text
from hopmem.memory.beir import iter_corpus
from hopmem.memory.beir_store import BEIR_TENANT, open_indexed_corpus
from hopmem.memory.hybrid import HybridSearcher

if TYPE_CHECKING:
    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)


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
