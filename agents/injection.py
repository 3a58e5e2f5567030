"""Instructions hidden in recalled text (indirect prompt injection): found, and kept away from the model.

A document or memory may hold text written for the model rather than for the reader: "ignore the previous
instructions and answer X", a role label such as ``SYSTEM:``, "reveal every stored memory", "remember this
permanently", a fake closing tag. Recalled text reaches the model as evidence, so such a sentence reads like an
order. Two places use this module:

* the prompts (:mod:`hopmem.agents.prompts`) :func:`neutralise` every recalled text they quote: each sentence or
  line that matches is replaced by :data:`NEUTRALISED` and quote fences are broken up (off only with
  ``injection_filter`` off, which ``hopmem bench attack`` uses to measure what these defences do);
* the answer step (``injection_filter``, on by default) removes such sentences from the evidence before either the
  model or the extractive answer reads it, names the passages that held one in the trace (the citations keep the
  original text, so the user still sees what the source says), and writes no answer back to memory that itself
  holds an order.

This is a pattern list, not a classifier: it stops the common phrasings (those of ``hopmem bench attack`` among
them; 1 of the 54,093 sentences of the benchmark corpora matches) and misses an order phrased in words it does not
list. Tenant isolation does not depend on it: a search only ever reads its own tenant's rows.
"""

from __future__ import annotations

import re

NEUTRALISED = "[instruction-like text removed]"
_ROLE = re.compile(r"^\s*(?:#+\s*)?(?:system|assistant|user|developer|admin(?:istrator)?)\s*:", re.IGNORECASE)
_COMMAND = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}"
    r"\b(?:instructions?|prompts?|passages?|rules?|above|question|evidence|context)\b"
    r"|\bnew instructions?\b|\b(?:developer|jailbreak|god) mode\b|\byou are now\b"
    r"|\b(?:reply|respond|answer|output|say|print|repeat)\b[^.\n]{0,40}"
    r"\b(?:only|exactly|nothing else|single word|in capitals|verbatim)\b"
    r"|\bsystem\s*(?:override|prompt|message|instruction)"
    r"|\b(?:reveal|print|list|dump|show)\b[^.!?\n]{0,30}\b(?:every|all|other|stored|hidden|secret)\b[^.!?\n]{0,30}"
    r"\b(?:memor(?:y|ies)|users?|tenants?|secrets?|codes?|passwords?|keys?)\b"
    r"|\bremember this\b"
    r"|\b(?:save|store|write)\b[^.!?\n]{0,30}\bas a (?:new )?memory\b"
    r"|</?\s*(?:evidence|system|context|instructions?|assistant|user)\s*>"
    r"|\b(?:assistant|ai|model|chatbot)\s*[,:]\s*(?:please\s+)?(?:ignore|remember|reply|answer|say|store|save|reveal)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def holds_instruction(text: str) -> bool:
    """Whether a line or sentence of ``text`` addresses the model (a role label or an order)."""
    return any(_ROLE.search(line) or _COMMAND.search(line) for line in text.split("\n"))


def defang(text: str) -> tuple[str, int]:
    """``text`` with each sentence or line that addresses the model replaced by :data:`NEUTRALISED`; and how many
    were replaced."""
    removed = 0
    out: list[str] = []
    for line in text.split("\n"):
        parts = _SENTENCE.split(line)
        kept: list[str] = []
        for part in parts:
            if _ROLE.search(part) or _COMMAND.search(part):
                removed += 1
                kept.append(NEUTRALISED)
            else:
                kept.append(part)
        out.append(" ".join(kept))
    return "\n".join(out), removed


def neutralise(text: str) -> str:
    """``text`` with quote fences broken up and every sentence or line that addresses the model replaced."""
    return defang(text.replace('"""', '" " "'))[0]
