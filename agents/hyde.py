"""A hypothetical answer to search with (HyDE, query2doc): the LLM guesses, the memory is searched with the guess.

An inference question about a person ("Would Melanie rather visit a national park or a theme park?") shares no words
and little meaning with the turns that answer it ("our family camping trip"): no search of the question's own words
can reach them. An LLM's short guess at the answer brings the words the evidence is likely to use (outdoors, nature,
hiking), right or wrong. :func:`hypothetical_query` returns the question followed by the guess, which the retrieve
step searches as one more list (``hyde``) beside the question and its sub-queries (query2doc's concatenation: the
question keeps its own words in the lexical search, the guess adds the others); the fusion weighs it as any other list.
The guess is never shown to the user as an answer, stored, or cited: it is only a search query.

With SmolLM2-135M on llama.cpp a guess took 0.29 s on this 2-core machine (LoCoMo questions,
``tools/conversation_hyde_recall.py``; docs/conversations.md). A failed call costs the list, never the question: the
agent searches without it (and asks again in its next search round, if there is one).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from hopmem.agents.prompts import hypothesis_messages
from hopmem.memory.errors import LLMError

if TYPE_CHECKING:
    from hopmem.agents.llm.base import ChatLLM

log = logging.getLogger(__name__)

MAX_GUESS_CHARS = 600
"""The longest guess kept (a runaway reply is cut at a word boundary; SmolLM2's 60-token guesses for LoCoMo
conversations 1-2 were 92 characters long at the median and 349 at most)."""


def hypothetical_answer(llm: ChatLLM, question: str, *, max_tokens: int) -> str:
    """The LLM's short guess at the answer to ``question``, on one line; ``""`` when it gives none.

    Raises:
        LLMError: when the backend fails (the caller searches without the guess and says so in the trace).
    """
    reply = llm.complete(hypothesis_messages(question), max_tokens=max_tokens, temperature=0.0)
    text = re.sub(r"\s+", " ", reply.text).strip()
    if len(text) > MAX_GUESS_CHARS:
        text = text[:MAX_GUESS_CHARS].rsplit(" ", 1)[0]
    return text


def hypothetical_query(llm: ChatLLM, question: str, *, max_tokens: int) -> tuple[str | None, str | None]:
    """``(query, warning)``: the question followed by the LLM's guess, or ``None`` and why there is none.

    An LLM error is logged and returned as the warning, not raised: the guess is an extra list, and the question's
    own searches answer without it.
    """
    try:
        guess = hypothetical_answer(llm, question, max_tokens=max_tokens)
    except LLMError as exc:
        log.warning("No hypothetical answer to search with: %s", exc)
        return None, f"no hypothetical answer ({exc}); searched without it"
    if not guess:
        return None, "the LLM wrote no hypothetical answer; searched without it"
    return f"{question} {guess}", None
