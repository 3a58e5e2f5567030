"""The reranker contract: the :class:`Reranker` interface every backend implements, and what they share.

A reranker re-scores the fused candidates of a question, one ``(query, passage)`` pair at a time:

- ``score(query, docs)`` gives one float per passage, in the order of ``docs`` (higher is more relevant; only the
  order within one call means anything, never the values across calls or backends);
- ``rank(query, docs, top_k)`` gives ``(index into docs, score)`` pairs, best first, ties in the given order, at most
  ``top_k`` of them (all without ``top_k``; none for ``top_k <= 0``).

Empty ``docs`` give empty results. This module imports nothing heavy: the backends (one module each in this package)
load their models only when one is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Reranker(Protocol):
    """Scores passages against a query; every backend of the agent's rerank step implements this."""

    name: str

    def score(self, query: str, docs: Sequence[str]) -> list[float]:
        """One relevance score per passage of ``docs`` (higher is better), in the order of ``docs``."""
        ...

    def rank(self, query: str, docs: Sequence[str], top_k: int | None = None) -> list[tuple[int, float]]:
        """``(index into docs, score)`` pairs, best first (ties keep the given order), at most ``top_k`` of them."""
        ...


def rank_by_scores(scores: Sequence[float], top_k: int | None = None) -> list[tuple[int, float]]:
    """Indices sorted by descending score; a stable sort, so equal scores keep the given order."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ranked = [(i, float(scores[i])) for i in order]
    return ranked if top_k is None else ranked[: max(top_k, 0)]


def passage_text(title: str | None, body: str) -> str:
    """The text a reranker reads for a stored passage: ``title: body``, without a title the body already begins with.

    Training and inference must format passages the same way; Cranfield's abstracts, for one, repeat their title.
    """
    title = (title or "").strip()
    body = body.strip()
    if not title or body.lower().startswith(title.lower()):
        return body
    return f"{title}: {body}"


class PassThroughReranker:
    """Keeps the candidates' own order (scores ``1/1, 1/2, 1/3, ...``); the reranker named ``none``."""

    name = "none"

    def score(self, query: str, docs: Sequence[str]) -> list[float]:
        return [1.0 / (i + 1) for i in range(len(docs))]

    def rank(self, query: str, docs: Sequence[str], top_k: int | None = None) -> list[tuple[int, float]]:
        return rank_by_scores(self.score(query, docs), top_k)
