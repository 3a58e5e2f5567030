"""The reranker contract: the :class:`Reranker` interface, the :class:`BaseReranker` the backends share, the result.

A reranker re-scores the fused candidates of a question, one ``(query, passage)`` pair at a time:

- ``score(query, docs)`` gives one finite float per passage, in the order of ``docs`` (higher is more relevant; only
  the order within one call means anything, never the values across calls or backends);
- ``rank(query, docs, top_k)`` gives :class:`RankedPassage` ``(index into docs, score)`` pairs, best first, ties in
  the given order, each index once, at most ``top_k`` of them (all without ``top_k``, none for ``top_k <= 0``); its
  scores are the ones ``score`` gives (a backend whose scores depend on the depth ranked, the setwise one, documents
  how);
- empty ``docs`` give empty results, and the same input gives the same output;
- a query that is not a string, ``docs`` that are not a sequence of strings (a bare string included) or a ``top_k``
  that is not a whole number raise :class:`~hopmem.memory.errors.InputError` with one sentence saying what to pass.

``tests/agents/test_rerank_conformance.py`` checks every backend of the registry against these rules. This module
imports nothing heavy: the backends (one module each in this package) load their models only when one is built.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from hopmem.memory.errors import InputError


class RankedPassage(NamedTuple):
    """One place of a ranking: the passage's index into the ``docs`` given, and its score (a plain tuple too)."""

    doc_index: int
    score: float


@runtime_checkable
class Reranker(Protocol):
    """Scores passages against a query; every backend of the agent's rerank step implements this."""

    name: str

    def score(self, query: str, docs: Sequence[str]) -> list[float]:
        """One relevance score per passage of ``docs`` (higher is better), in the order of ``docs``."""
        ...

    def rank(self, query: str, docs: Sequence[str], top_k: int | None = None) -> Sequence[tuple[int, float]]:
        """``(index into docs, score)`` pairs, best first (ties keep the given order), at most ``top_k`` of them."""
        ...


def check_input(query: object, docs: object) -> list[str]:
    """``docs`` as a list, after checking the types the contract promises to reject.

    Raises:
        InputError: when ``query`` is not a string, ``docs`` is a string or not a sequence, or a passage is not a
            string.
    """
    if not isinstance(query, str):
        raise InputError(f"A reranker's query must be a string, not {type(query).__name__}.")
    if isinstance(docs, str | bytes) or not isinstance(docs, Sequence):
        raise InputError(
            f"A reranker takes its passages as a list of strings, not {type(docs).__name__}; wrap one passage in a "
            "list."
        )
    for position, doc in enumerate(docs):
        if not isinstance(doc, str):
            raise InputError(
                f"Passage {position} given to the reranker is {type(doc).__name__}, not a string; pass the text."
            )
    return list(docs)


def check_top_k(top_k: object) -> None:
    """Reject a ``top_k`` that is neither None nor a whole number (:class:`~hopmem.memory.errors.InputError`)."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)):
        raise InputError(f"A ranking's top_k must be a whole number or None, not {type(top_k).__name__}.")


def rank_by_scores(scores: Sequence[float], top_k: int | None = None) -> list[RankedPassage]:
    """Indices sorted by descending score; a stable sort, so equal scores keep the given order."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ranked = [RankedPassage(i, float(scores[i])) for i in order]
    return ranked if top_k is None else ranked[: max(top_k, 0)]


class BaseReranker(ABC):
    """What the backends share: the input checks of the contract, empty input, and ``rank`` from ``score``.

    A backend implements :meth:`_score` for a non-empty, checked list of passages; a backend whose ranking is not a
    sort of its scores (the setwise one) overrides :meth:`score` and :meth:`rank` and calls the checks itself.
    """

    name: str = ""

    @abstractmethod
    def _score(self, query: str, docs: list[str]) -> list[float]:
        """One score per passage of ``docs`` (never empty, already checked)."""

    def score(self, query: str, docs: Sequence[str]) -> list[float]:
        """One relevance score per passage of ``docs`` (higher is better), in the order of ``docs``."""
        passages = check_input(query, docs)
        return self._score(query, passages) if passages else []

    def rank(self, query: str, docs: Sequence[str], top_k: int | None = None) -> list[RankedPassage]:
        """``(index into docs, score)`` pairs, best first (ties keep the given order), at most ``top_k`` of them."""
        check_top_k(top_k)
        return rank_by_scores(self.score(query, docs), top_k)


def passage_text(title: str | None, body: str) -> str:
    """The text a reranker reads for a stored passage: ``title: body``, without a title the body already begins with.

    Training and inference must format passages the same way; Cranfield's abstracts, for one, repeat their title.
    """
    title = (title or "").strip()
    body = body.strip()
    if not title or body.lower().startswith(title.lower()):
        return body
    return f"{title}: {body}"


class PassThroughReranker(BaseReranker):
    """Keeps the candidates' own order (scores ``1/1, 1/2, 1/3, ...``); the reranker named ``none``."""

    name = "none"

    def _score(self, query: str, docs: list[str]) -> list[float]:
        return [1.0 / (i + 1) for i in range(len(docs))]
