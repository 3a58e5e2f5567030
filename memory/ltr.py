"""Learning to rank from feedback: a small pairwise linear model over retrieval and memory features.

Why: feedback says which memories answered which query. A linear scorer over a handful of features learns how much
each kind of evidence should count for this user (bm25 against dense similarity, fresh against old, documents
against agent notes), without a neural reranker.

Contract:

* **Features** of a candidate for a query (:data:`FEATURES`): its bm25 score relative to the best of the list, its
  dense cosine, the reciprocal ranks in both lists, its fused score relative to the best, its trust, recency
  (``exp(-age / 30 days)``), ``log1p`` of its access count, and its source (document, user, agent or other). A list
  it is absent from contributes zeros.
* **Training data** come from the behavioural file only: each feedback event with a query is a label (``up`` and
  ``click`` positive, ``down`` negative). For each query (the ``ltr_max_queries`` latest), the candidates are
  retrieved again; pairs are (positive, negative) with the negatives being ``down`` events and the retrieved
  candidates nobody marked positive.
* **Model**: standardised features, weights fitted by full-batch gradient descent on the pairwise logistic loss
  (RankNet with a linear scorer) with L2 regularisation. The score of a candidate is ``sigmoid(w . x)``, positive,
  so trust weighting (which always runs after it) still applies.
* **Switched off** below ``ltr_min_feedback`` events: no model is trained, and none is used. It lives in the
  behavioural file (table ``ltr_models``), so erasing the behavioural data erases it.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.memory.db import write_transaction
from hopmem.memory.records import Hit

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hopmem.memory.store import MemoryStore
    from hopmem.memory.trust.model import TrustModel

log = logging.getLogger(__name__)

FEATURES: tuple[str, ...] = (
    "bm25",
    "dense",
    "lexical_rr",
    "dense_rr",
    "fused",
    "trust",
    "recency",
    "access",
    "src_document",
    "src_user",
    "src_agent",
    "src_other",
)
RECENCY_DAYS = 30.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS ltr_models (
    tenant TEXT PRIMARY KEY,
    trained_at REAL NOT NULL,
    events INTEGER NOT NULL,
    model TEXT NOT NULL
)
"""


@dataclass
class LinearRanker:
    """Weights over standardised :data:`FEATURES`; ``events`` is how many feedback events it was trained on."""

    weights: list[float]
    mean: list[float]
    std: list[float]
    events: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def score(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        z = (x - np.asarray(self.mean)) / np.asarray(self.std)
        return np.asarray(1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights)))), np.float64)

    def to_json(self) -> str:
        return json.dumps(
            {"features": FEATURES, "weights": self.weights, "mean": self.mean, "std": self.std, "info": self.info}
        )

    @classmethod
    def from_json(cls, text: str, events: int) -> LinearRanker | None:
        data = json.loads(text)
        if tuple(data.get("features", ())) != FEATURES:
            return None  # trained on other features: unusable, retrain
        return cls(data["weights"], data["mean"], data["std"], events, data.get("info", {}))


def features(
    store: MemoryStore,
    tenant: str,
    lists: Mapping[str, Sequence[Hit]],
    fused: Sequence[Hit],
    trust: TrustModel | None,
    *,
    now: float | None = None,
) -> NDArray[np.float64]:
    """The feature matrix (one row per ``fused`` candidate, columns :data:`FEATURES`)."""
    now = time.time() if now is None else now
    ids = [h.memory_id for h in fused]
    if not ids:
        return np.zeros((0, len(FEATURES)))
    lexical = {h.memory_id: (r, h.score) for r, h in enumerate(lists.get("lexical", ()), start=1)}
    dense = {h.memory_id: (r, h.score) for r, h in enumerate(lists.get("dense", ()), start=1)}
    best_lex = max((s for _, s in lexical.values()), default=0.0) or 1.0
    best_fused = max((h.score for h in fused), default=0.0) or 1.0
    rows = {r.id: r for r in store.get(tenant, ids)}
    trusts = trust.memory_trusts(tenant, ids, now=now) if trust is not None else {}
    out = np.zeros((len(ids), len(FEATURES)))
    for i, hit in enumerate(fused):
        record = rows.get(hit.memory_id)
        lex_rank, lex_score = lexical.get(hit.memory_id, (0, 0.0))
        dense_rank, dense_score = dense.get(hit.memory_id, (0, 0.0))
        source = record.source_class if record is not None else "other"
        age_days = max(0.0, now - (record.created_at if record is not None else now)) / 86_400.0
        out[i] = (
            lex_score / best_lex,
            dense_score,
            1.0 / lex_rank if lex_rank else 0.0,
            1.0 / dense_rank if dense_rank else 0.0,
            hit.score / best_fused,
            trusts.get(hit.memory_id, 1.0),
            math.exp(-age_days / RECENCY_DAYS),
            math.log1p(record.access_count if record is not None else 0),
            source == "document",
            source == "user",
            source == "agent",
            source not in ("document", "user", "agent"),
        )
    return out


def fit_pairwise(
    groups: Sequence[tuple[NDArray[np.float64], NDArray[np.float64]]],
    *,
    l2: float = 1e-2,
    steps: int = 300,
    learning_rate: float = 0.5,
) -> tuple[list[float], list[float], list[float], int]:
    """Fit linear weights on (features, labels) groups with the pairwise logistic loss.

    Returns:
        (weights, mean, std, number of pairs); labels are 1 (positive) or 0 (negative) within each group.
    """
    stacked = np.vstack([x for x, _ in groups])
    mean = stacked.mean(axis=0)
    std = stacked.std(axis=0)
    std[std < 1e-9] = 1.0
    diffs: list[NDArray[np.float64]] = []
    for x, y in groups:
        z = (x - mean) / std
        pos, neg = z[y > 0.5], z[y <= 0.5]
        if len(pos) and len(neg):
            diffs.append((pos[:, None, :] - neg[None, :, :]).reshape(-1, z.shape[1]))
    if not diffs:
        return [0.0] * stacked.shape[1], mean.tolist(), std.tolist(), 0
    d = np.vstack(diffs)
    w = np.zeros(d.shape[1])
    for _ in range(steps):
        margin = d @ w
        grad = -(d * (1.0 / (1.0 + np.exp(margin)))[:, None]).mean(axis=0) + l2 * w
        w -= learning_rate * grad
    return w.tolist(), mean.tolist(), std.tolist(), len(d)


class LearnedRanker:
    """The ranking layer of one tenant, stored in the behavioural file (``conn``).

    Args:
        conn: the behavioural file's connection.
        trust: the trust model, for the trust feature (None: every memory counts as trusted).
        min_feedback: events needed before a model is trained or used.
    """

    def __init__(self, conn: sqlite3.Connection, trust: TrustModel | None, *, min_feedback: int) -> None:
        self.conn = conn
        self.trust = trust
        self.min_feedback = min_feedback
        with write_transaction(conn) as c:
            c.execute(SCHEMA)
        self._model: dict[str, LinearRanker | None] = {}

    def model(self, tenant: str) -> LinearRanker | None:
        """The trained model of ``tenant``, or None (switched off)."""
        if tenant not in self._model:
            row = self.conn.execute("SELECT model, events FROM ltr_models WHERE tenant = ?", (tenant,)).fetchone()
            model = None if row is None else LinearRanker.from_json(row[0], int(row[1]))
            self._model[tenant] = model if model is not None and model.events >= self.min_feedback else None
        return self._model[tenant]

    def rescore(
        self, store: MemoryStore, tenant: str, lists: Mapping[str, Sequence[Hit]], fused: list[Hit]
    ) -> list[Hit]:
        """Re-order ``fused`` by the model's scores; unchanged when no model is trained."""
        model = self.model(tenant)
        if model is None or not fused:
            return fused
        scores = model.score(features(store, tenant, lists, fused, self.trust))
        ranked = sorted(zip(fused, scores, strict=True), key=lambda p: (-float(p[1]), p[0].memory_id))
        return [Hit(h.memory_id, float(s)) for h, s in ranked]

    def train(
        self,
        store: MemoryStore,
        tenant: str,
        retrieve: Callable[[str], dict[str, list[Hit]]],
        fuse: Callable[[dict[str, list[Hit]]], list[Hit]],
        *,
        max_queries: int,
    ) -> dict[str, Any] | None:
        """Fit and store the model from ``tenant``'s feedback; None when there is too little of it (off).

        Args:
            retrieve: the ranked lists of a query (the searcher's ``ranked_lists``).
            fuse: the fusion of those lists.
        """
        events = int(self.conn.execute("SELECT count(*) FROM feedback WHERE tenant = ?", (tenant,)).fetchone()[0])
        if events < self.min_feedback:
            log.info("learning to rank stays off: %d feedback events, %d needed", events, self.min_feedback)
            return None
        labels: dict[str, dict[int, float]] = {}
        order: list[str] = []
        for query, mid, value in self.conn.execute(
            "SELECT query, memory_id, value FROM feedback WHERE tenant = ? AND query IS NOT NULL ORDER BY id DESC",
            (tenant,),
        ):
            if query not in labels:
                if len(labels) >= max_queries:
                    continue
                labels[query] = {}
                order.append(query)
            labels[query][int(mid)] = labels[query].get(int(mid), 0.0) + float(value)
        groups: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
        for query in order:
            lists = retrieve(query)
            fused = fuse(lists)
            known = {h.memory_id for h in fused}
            extra = [Hit(mid, 0.0) for mid in labels[query] if mid not in known]
            candidates = fused + extra
            x = features(store, tenant, lists, candidates, self.trust)
            y = np.asarray([1.0 if labels[query].get(h.memory_id, 0.0) > 0 else 0.0 for h in candidates])
            if y.any() and not y.all():
                groups.append((x, y))
        if not groups:
            log.info("learning to rank stays off: no query with both positive and negative feedback")
            return None
        weights, mean, std, pairs = fit_pairwise(groups)
        info = {
            "queries": len(groups),
            "pairs": pairs,
            "events": events,
            "weights": dict(zip(FEATURES, weights, strict=True)),
        }
        model = LinearRanker(weights, mean, std, events, info)
        with write_transaction(self.conn) as conn:
            conn.execute(
                "INSERT INTO ltr_models (tenant, trained_at, events, model) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (tenant) DO UPDATE SET trained_at = excluded.trained_at, events = excluded.events,"
                " model = excluded.model",
                (tenant, time.time(), events, model.to_json()),
            )
        self._model[tenant] = model
        log.info("learning to rank trained on %d queries, %d pairs", len(groups), pairs)
        return info

    def trained_events(self, tenant: str) -> int:
        """How many feedback events the stored model was trained on (0 when there is none)."""
        row = self.conn.execute("SELECT events FROM ltr_models WHERE tenant = ?", (tenant,)).fetchone()
        return 0 if row is None else int(row[0])

    def forget(self, tenant: str) -> None:
        """Drop the cached model (after the behavioural data was erased)."""
        self._model.pop(tenant, None)
