"""Retrieval and answer metrics, and latency percentiles.

Retrieval metrics follow the usual TREC/BEIR definitions: nDCG@k with graded gains (``rel``, linear gain) and the
ideal ranking built from all judged documents of the query; recall@k as the fraction of relevant (grade > 0) documents
found in the top k; MRR@k as the reciprocal rank of the first relevant document. Answer metrics are SQuAD's
exact match and token F1 after the standard normalisation.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence


def ndcg_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    gains = [max(qrels.get(doc, 0), 0) for doc in ranked[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, grade in qrels.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if qrels.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def retrieval_metrics(ranked: Sequence[str], qrels: Mapping[str, int]) -> dict[str, float]:
    """The metrics every retrieval report carries."""
    return {
        "ndcg@10": ndcg_at_k(ranked, qrels, 10),
        "recall@5": recall_at_k(ranked, qrels, 5),
        "recall@10": recall_at_k(ranked, qrels, 10),
        "mrr@10": mrr_at_k(ranked, qrels, 10),
    }


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(a) for a in answers))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    best = 0.0
    pred_tokens = normalize_answer(prediction).split()
    for answer in answers:
        gold = normalize_answer(answer).split()
        common = Counter(pred_tokens) & Counter(gold)
        overlap = sum(common.values())
        if overlap == 0 or not pred_tokens or not gold:
            continue
        precision, recall = overlap / len(pred_tokens), overlap / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def percentiles(values: Sequence[float], qs: Sequence[int] = (50, 95)) -> dict[str, float]:
    """Nearest-rank-interpolated percentiles (numpy's default linear method), keyed ``p50`` etc."""
    import numpy as np

    if not values:
        return {f"p{q}": 0.0 for q in qs}
    arr = np.asarray(values, dtype=float)
    return {f"p{q}": round(float(np.percentile(arr, q)), 3) for q in qs}


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
