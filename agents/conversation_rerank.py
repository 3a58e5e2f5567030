"""How the rerank step scores conversation memories: which reads of a turn the reranker scores, and the blend.

A conversation memory reads ``[8 May 2023] Alice: I adopted a cat``. The cross-encoder was trained on document
passages; on LoCoMo it ordered turns better without the date (``conversation_rerank_date``), and how it treats the
speaker's name cuts both ways: reading the name helps questions about what that speaker said, while an adversarial
question names the *other* speaker on purpose, and a reranker reading names then prefers the named speaker's turns.
``conversation_rerank_speaker`` says which read counts:

- ``keep``: ``Alice: I adopted a cat``;
- ``drop``: ``I adopted a cat``;
- ``mean``: both reads scored and their raw scores averaged (twice the reranker's work), then blended with the fused
  order. Only a reranker that blends (the cross-encoder's ``with_blend``) can give raw scores; any other reads the
  turn once, as ``keep``.

The choice was made on LoCoMo conversations 1-2 and checked on 3-5 (docs/conversations.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hopmem.agents.rerank.base import rank_by_scores
from hopmem.memory.conversations import without_speaker_labels
from hopmem.memory.errors import ConfigError

if TYPE_CHECKING:
    from hopmem.agents.rerank.base import Reranker

SPEAKER_READS: tuple[str, ...] = ("keep", "drop", "mean")
"""The values of ``conversation_rerank_speaker``."""


def conversation_order(
    reranker: Reranker, query: str, texts: Sequence[str], *, blend: float | None, speaker: str = "keep"
) -> Sequence[tuple[int, float]]:
    """``(index into texts, score)`` pairs, best first, as the reranker reads conversation turns.

    Args:
        reranker: the agent's reranker.
        query: the question.
        texts: the candidates' texts as the reranker is to read them (already without their date when so set).
        blend: the weight of the given (fused) order, for a reranker that blends (None: its own weight).
        speaker: one of :data:`SPEAKER_READS`.

    Raises:
        ConfigError: on an unknown ``speaker``.
        HopmemError: whatever the reranker raises (the rerank step keeps the fused order then).
    """
    if speaker not in SPEAKER_READS:
        raise ConfigError(f"Unknown conversation_rerank_speaker {speaker!r}; use one of {', '.join(SPEAKER_READS)}.")
    with_blend: Any = getattr(reranker, "with_blend", None)
    blended = with_blend(blend) if blend is not None and callable(with_blend) else reranker
    if speaker == "keep" or (speaker == "mean" and not callable(with_blend)):
        return blended.rank(query, list(texts))
    bare = [without_speaker_labels(t) for t in texts]
    if speaker == "drop":
        return blended.rank(query, bare)
    from hopmem.agents.rerank.cross_encoder import blend_with_order

    raw = with_blend(0.0)  # the model's own scores, each read on its own scale before the one blend
    named, unnamed = raw.score(query, list(texts)), raw.score(query, bare)
    mean = [(a + b) / 2 for a, b in zip(named, unnamed, strict=True)]
    weight = blend if blend is not None else float(getattr(reranker, "blend", 0.0))
    return rank_by_scores(blend_with_order(mean, weight))
