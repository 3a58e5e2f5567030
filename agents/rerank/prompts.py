"""The prompts of the language-model rerankers, shared by training (:mod:`hopmem.finetune`) and inference.

A reranker only works with the prompt it was trained on, so both sides build their messages here:

- pointwise (ProRank / mxbai-rerank-v2 style): one (query, passage) pair; the model answers ``1`` (relevant) or ``0``;
  the score is ``logit("1") - logit("0")`` at the first answer position;
- setwise (Rank-R1): a query and numbered passages; the model reasons inside ``<think>...</think>`` and names the most
  relevant passage as ``<answer>[k]</answer>``.

Passages and queries are cut to a token budget before they go into a prompt (:func:`clip_tokens`), so a long
document never pushes the question out of the model's context.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from hopmem.agents.llm.base import Message

RELEVANT, IRRELEVANT = "1", "0"

POINTWISE_SYSTEM = (
    "You judge search results. Given a query and a passage, answer 1 if the passage is relevant to the query and "
    "0 if it is not. Answer with the single digit only."
)
SETWISE_SYSTEM = (
    "You judge search results. Given a query and numbered passages, think briefly inside <think></think> about which "
    "passage is the most relevant to the query, then name it inside <answer></answer>, e.g. <answer>[2]</answer>."
)

_ANSWER = re.compile(r"<answer>\s*\[?\s*(\d+)\s*\]?\s*</answer>", re.IGNORECASE | re.DOTALL)
_THINK = re.compile(r"<think>(.*?)</think>", re.IGNORECASE | re.DOTALL)
_DIGIT = re.compile(r"[01]")
_NEGATIVE_WORDS = re.compile(r"\b(no|not|irrelevant|unrelated)\b", re.IGNORECASE)
_POSITIVE_WORDS = re.compile(r"\b(yes|relevant|related)\b", re.IGNORECASE)


def clip_tokens(tokenizer: Any, text: str, max_tokens: int) -> str:
    """``text`` cut to its first ``max_tokens`` tokens of ``tokenizer`` (unchanged when it already fits)."""
    text = " ".join(text.split())
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    return str(tokenizer.decode(ids[:max_tokens], skip_special_tokens=True)).strip()


def pointwise_messages(query: str, passage: str) -> list[Message]:
    """The chat of one pointwise judgement; the reply (generation prompt added by the template) is ``1`` or ``0``."""
    return [
        {"role": "system", "content": POINTWISE_SYSTEM},
        {
            "role": "user",
            "content": f"Query: {query}\n\nPassage: {passage}\n\nIs the passage relevant to the query? Answer 1 or 0.",
        },
    ]


def setwise_messages(query: str, passages: Sequence[str]) -> list[Message]:
    """The chat of one setwise selection over ``passages`` (numbered from 1 in the prompt)."""
    listed = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(passages, start=1))
    return [
        {"role": "system", "content": SETWISE_SYSTEM},
        {
            "role": "user",
            "content": f"Query: {query}\n\nPassages:\n{listed}\n\nWhich passage is the most relevant to the query?",
        },
    ]


def parse_pointwise(reply: str) -> tuple[str | None, bool]:
    """The answer of a pointwise reply as ``"1"``/``"0"`` (None without one) and whether the reply is exactly the digit.

    The first 0/1 digit counts; a reply without one is read by its words ("no", "not relevant", "irrelevant" mean 0;
    "yes", "relevant" mean 1), because an untuned chat model answers in words first, and training has to start from
    what it says.
    """
    stripped = reply.strip()
    found = _DIGIT.search(stripped)
    if found:
        return found.group(0), stripped in (RELEVANT, IRRELEVANT)
    if _NEGATIVE_WORDS.search(stripped):
        return IRRELEVANT, False
    if _POSITIVE_WORDS.search(stripped):
        return RELEVANT, False
    return None, False


def parse_setwise(reply: str, n_passages: int) -> tuple[int | None, str, bool]:
    """The chosen passage (0-based; None when missing or out of range), the reasoning, and whether the format held.

    The format holds when the reply has one ``<think>`` block followed by one ``<answer>[k]</answer>`` with ``k`` in
    ``1..n_passages``.
    """
    answers = _ANSWER.findall(reply)
    thoughts = _THINK.findall(reply)
    reasoning = thoughts[0].strip() if thoughts else ""
    choice: int | None = None
    if answers:
        k = int(answers[-1])
        choice = k - 1 if 1 <= k <= n_passages else None
    think_end = reply.lower().find("</think>")
    answer_at = reply.lower().rfind("<answer>")
    well_formed = len(answers) == 1 and len(thoughts) == 1 and choice is not None and 0 <= think_end < max(answer_at, 0)
    return choice, reasoning, well_formed
