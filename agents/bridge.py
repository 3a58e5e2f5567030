"""The short answer that links a chain's searches: sub-query 1's answer fills ``{1}`` in sub-query 2.

A bridge question ("the country where the author of Dracula was born") needs an entity from the first search's
evidence before the second search. :func:`bridge_answer` gets it from the LLM under a JSON schema (kept only when the
evidence contains it) or, without an LLM or when its answer cannot be trusted, from :func:`extractive_bridge`.
:func:`condense` cuts passages to the sentences that matter, because every prompt token costs time on a CPU.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hopmem.agents.planner import content_words
from hopmem.agents.prompts import bridge_messages
from hopmem.memory.errors import HopmemError

if TYPE_CHECKING:
    from hopmem.agents.llm.base import ChatLLM

log = logging.getLogger(__name__)

BRIDGE_MAX_TOKENS = 32
BRIDGE_BUDGET_TOKENS = 320
BRIDGE_SENTENCES = 2
"""Sentences kept per passage for a bridge answer, besides its first: the ones sharing most words with the query."""

BRIDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string", "minLength": 1, "maxLength": 80}},
    "required": ["answer"],
    "additionalProperties": False,
}


def bridge_answer(llm: ChatLLM | None, query: str, passages: Sequence[str]) -> str:
    """The short answer (an entity or phrase) of sub-query ``query`` from its evidence ``passages``. Never raises.

    The LLM answers under :data:`BRIDGE_SCHEMA`; its answer is kept only when its content words occur in the
    passages (an answer the evidence does not contain would steer the next search wrong). Otherwise, and without an
    LLM, :func:`extractive_bridge` picks a phrase from the passages. "" when there are no passages.
    """
    texts = [" ".join(str(p).split()) for p in passages if str(p).strip()]
    if not texts:
        return ""
    if llm is not None:
        try:
            condensed = [condense(query, text, BRIDGE_SENTENCES) for text in texts]
            reply, _ = llm.complete_json(
                bridge_messages(query, condensed, budget_tokens=BRIDGE_BUDGET_TOKENS, count=llm.count_tokens),
                BRIDGE_SCHEMA,
                max_tokens=BRIDGE_MAX_TOKENS,
            )
            answer = " ".join(str(reply.get("answer", "")).split()) if isinstance(reply, dict) else ""
            evidence = content_words(" ".join(texts))
            words = content_words(answer)
            if answer and words and words <= evidence and not (words <= content_words(query)):
                return answer
            log.info("bridge answer %r not found in the evidence; extractive fallback", answer[:60])
        except HopmemError as exc:
            log.info("bridge answer falls back to extraction: %s", exc)
    return extractive_bridge(query, texts)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def condense(query: str, passage: str, keep: int) -> str:
    """``passage`` cut to its first sentence and the ``keep`` others sharing most content words with ``query``.

    A bridge answer is one entity or phrase: the sentences that mention the query's words hold it, and the first
    sentence says what the passage is about. Every prompt token costs time on a CPU (prompt processing dominates a
    135M model's latency), so the rest is left out. The kept sentences stay in their order.
    """
    sentences = _SENTENCE_END.split(passage)
    if len(sentences) <= keep + 1:
        return passage
    wanted = content_words(query)
    shared = {i: len(content_words(sentences[i]) & wanted) for i in range(1, len(sentences))}
    ranked = sorted((i for i in shared if shared[i]), key=lambda i: (-shared[i], i))
    chosen = sorted({0, *ranked[:keep]})
    out = sentences[0]
    for before, i in itertools.pairwise(chosen):
        out += (" " if i == before + 1 else " ... ") + sentences[i]
    return out


def extractive_bridge(query: str, passages: Sequence[str]) -> str:
    """A phrase from the passages that likely answers ``query``: the longest run of capitalised words (a name) in the
    passage sentence sharing most words with the query, not counting names the query already holds; failing that,
    the start of that sentence. A heuristic, used only when no LLM answer can be trusted."""
    asked = content_words(query)
    best, best_score = "", -1.0
    for rank, text in enumerate(passages):
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            score = len(content_words(sentence) & asked) - 0.1 * rank
            if score > best_score:
                best, best_score = sentence, score
    names = [
        " ".join(m.split())
        for m in re.findall(
            r"(?:[A-Z0-9][\w'’.-]*)(?:\s+(?:(?:of|the|de|von|van|del|la|le)\s+)?[A-Z0-9][\w'’.-]*)*", best
        )
    ]
    fresh = [n for n in names if not content_words(n) <= asked and content_words(n)]
    if fresh:
        return max(fresh, key=lambda n: (len(n.split()), -best.find(n)))
    return " ".join(best.split()[:12])
