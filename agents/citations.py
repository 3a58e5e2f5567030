"""Citation markers in generated answers: find them and keep only those that point at given evidence."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")


def cited_numbers(answer: str, n_evidence: int) -> list[int]:
    """The evidence numbers (1-based) that ``answer`` cites and that exist, in order of first use."""
    found: dict[int, None] = {}
    for match in _MARKER.finditer(answer):
        for part in match.group(1).split(","):
            number = int(part)
            if 1 <= number <= n_evidence:
                found.setdefault(number, None)
    return list(found)


def strip_invalid_markers(answer: str, n_evidence: int) -> str:
    """Remove markers that cite evidence the model was not given (``[7]`` when there were 5 passages)."""

    def keep(match: re.Match[str]) -> str:
        numbers = [int(p) for p in match.group(1).split(",")]
        valid = [n for n in numbers if 1 <= n <= n_evidence]
        return "[" + ", ".join(str(n) for n in valid) + "]" if valid else ""

    return re.sub(r"\s+(?=[.,;:!?]|$)", "", _MARKER.sub(keep, answer)).strip()


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def attribute_citations(answer: str, passages: Sequence[Mapping[str, object]], *, min_overlap: int = 2) -> str:
    """Add a marker after each answer sentence that shares at least ``min_overlap`` content words with a passage.

    Small models often answer from the evidence without citing it; the marker then names the passage the sentence
    overlaps most, so that every citation still points at evidence the model was given. Sentences that already
    carry a marker are left alone.
    """
    from hopmem.agents.extractive import stems

    vocab = [stems(str(p.get("text", ""))) for p in passages]
    out = []
    for sentence in _SENTENCE_END.split(answer.strip()):
        if not sentence or _MARKER.search(sentence):
            out.append(sentence)
            continue
        words = stems(sentence)
        overlaps = [len(words & v) for v in vocab]
        best = max(range(len(overlaps)), key=lambda i: overlaps[i], default=None)
        if best is not None and overlaps[best] >= min_overlap:
            tail = len(sentence) - len(sentence.rstrip(".!?"))
            sentence = f"{sentence[: len(sentence) - tail]} [{best + 1}]{sentence[len(sentence) - tail :]}"
        out.append(sentence)
    return " ".join(out)
