"""An answer without an LLM: the evidence sentence that shares the most words with the question, cited."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from hopmem.memory.fts import query_tokens

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def stems(text: str) -> set[str]:
    """Content words cut to five letters: a crude stemmer that matches "causes" with "caused"."""
    return {t[:5] for t in query_tokens(text, max_tokens=100_000)}


def extractive_answer(question: str, passages: Sequence[Mapping[str, object]]) -> str:
    """The best-matching sentence of the evidence followed by its citation marker, or a plain "not found"."""
    wanted = stems(question)
    best: tuple[float, int, str] | None = None
    for n, passage in enumerate(passages, start=1):
        for sentence in _SENTENCE.split(str(passage.get("text", ""))):
            sentence = sentence.strip()
            if len(sentence) < 3 or sentence.startswith("#"):
                continue
            words = stems(sentence)
            overlap = len(wanted & words)
            # Prefer earlier passages (better ranked) on ties; penalise very long sentences slightly.
            score = overlap - 0.001 * len(sentence) / 100 - 0.01 * (n - 1)
            if best is None or score > best[0]:
                best = (score, n, sentence)
    if best is None:
        return "I could not find anything about that in the memory."
    return f"{best[2]} [{best[1]}]"
