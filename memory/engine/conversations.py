"""Conversation memory: store a multi-session chat turn by turn (or window by window), search it turn-aware.

:meth:`ConversationsMixin.add_conversation` writes the memories :func:`hopmem.memory.conversations.memory_items`
makes (``[date] Speaker: text``, with speaker, session, date and turn ids in the metadata) in batches through the
ordinary write path, so the trust gate sees them like any other write: the user's own import (a handle without an
agent) is stored visible, an agent's import is gated (its burst limit would hold most of a long chat).
:meth:`ConversationsMixin.search_conversation` is the search the conversation evaluation measures
(:class:`~hopmem.memory.conversation_search.ConversationSearcher`), optionally confined to one conversation, and
:meth:`ConversationsMixin.use_conversation_search` makes it the handle's searcher (so the agent's too).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hopmem.memory import validation as check
from hopmem.memory.conversation_search import CONVERSATION_FUSION, ConversationFusion, ConversationSearcher
from hopmem.memory.conversations import (
    SOURCE_CLASS,
    Conversation,
    load_conversations,
    memory_items,
    parse_conversation,
    turns_of,
)
from hopmem.memory.engine.writes import WritesMixin
from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import SEARCH_MODES
from hopmem.memory.records import MemoryInput, SearchResult

log = logging.getLogger(__name__)


@dataclass
class ConversationReport:
    """What :meth:`ConversationsMixin.add_conversation` stored.

    Attributes:
        conversation: the conversation's id.
        turns: turns read.
        memories: memories the turns became (``turns / window``, rounded up per session).
        added: memories newly written (the rest were already stored: the same text for this tenant).
        quarantined: memories the trust gate held for review (0 for the user's own import).
        memory_ids: the memory of each window, in conversation order.
        turn_memory: the memory that holds each turn, by turn id.
        seconds: wall time of the import.
    """

    conversation: str
    turns: int
    memories: int
    added: int
    quarantined: int
    memory_ids: list[int]
    turn_memory: dict[str, int]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ConversationsMixin(WritesMixin):
    """``add_conversation`` and ``search_conversation``; see :class:`~hopmem.memory.engine.MemoryEngine`."""

    def add_conversation(
        self,
        conversation: Conversation | Mapping[str, Any] | Path | str,
        *,
        window: int = 1,
        embed_context: int = 1,
        resolve_dates: bool = True,
        agent: str | None = None,
        batch_size: int | None = None,
        progress: bool = True,
    ) -> ConversationReport:
        """Remember a multi-session conversation, one memory per turn or per window of turns.

        Args:
            conversation: a :class:`~hopmem.memory.conversations.Conversation`, one LoCoMo-format sample (a mapping
                with ``conversation`` and optionally ``sample_id`` and ``qa``), or the path of a LoCoMo-format JSON
                file holding exactly one conversation (use :func:`~hopmem.memory.conversations.load_conversations`
                for a file of several).
            window: consecutive turns of a session per memory (1: one memory per turn).
            embed_context: turns before and after each memory (same session) added to the text its dense vector
                is made from, not to the stored text (1 measured best on LoCoMo conversations 1-2: dense recall@10
                0.53 against 0.41 without and 0.51 with 2; docs/conversations.md).
            resolve_dates: write the date a relative expression means after it ("yesterday (7 May 2023)").
            agent: the agent the turns are written as (None: the user's own import, which the trust gate does not
                hold).
            batch_size: memories per embedding batch and transaction (default: ``embed_batch_size`` times four).
            progress: show a progress bar.

        Every memory's text starts with its session date (``[8 May 2023] Caroline: ...``); its metadata holds
        ``conversation``, ``session``, ``date`` (ISO), ``date_raw``, ``time``, ``speakers`` (and ``speaker`` for one
        turn), ``dia_ids``; its tags are ``conversation:<id>`` and ``session:<n>``; its source class is
        ``conversation``. Importing the same conversation again stores nothing new.

        Raises:
            InputError: on a conversation without turns, a file of several conversations, or a bad window.
        """
        import time

        started = time.perf_counter()
        conv = _as_conversation(conversation)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise InputError(f"window must be a positive integer, not {window!r}.")
        if isinstance(embed_context, bool) or not isinstance(embed_context, int) or embed_context < 0:
            raise InputError(f"embed_context must be a non-negative integer, not {embed_context!r}.")
        pairs = memory_items(conv, window=window, embed_context=embed_context, resolve_dates=resolve_dates)
        seen: set[str] = set()
        inputs: list[MemoryInput] = []
        embeds: list[str] = []
        for item, embed in pairs:
            content = item["content"]
            if content in seen:  # the same words on the same day: keep both turns apart (the store dedupes by text)
                content = f"{content} (turn {', '.join(item['metadata']['dia_ids'])})"
            seen.add(content)
            inputs.append(
                self._input(content, None, item["tags"], item["metadata"], agent, SOURCE_CLASS, 0.5, item["source"])
            )
            embeds.append(embed)
        size = batch_size or self.config.embed_batch_size * 4
        results = []
        with tqdm(total=len(inputs), desc=f"conversation {conv.id}", unit="mem", disable=not progress) as bar:
            for start in range(0, len(inputs), size):
                results.extend(self._write(inputs[start : start + size], embeds[start : start + size]))
                bar.update(min(size, len(inputs) - start))
        ids = [r.id for r in results]
        turn_memory = {
            dia: mid for (item, _), mid in zip(pairs, ids, strict=True) for dia in item["metadata"]["dia_ids"]
        }
        return ConversationReport(
            conversation=conv.id,
            turns=len(conv.turns),
            memories=len(ids),
            added=sum(1 for r in results if r.status == "added"),
            quarantined=sum(1 for r in results if r.quarantined),
            memory_ids=ids,
            turn_memory=turn_memory,
            seconds=round(time.perf_counter() - started, 3),
        )

    def search_conversation(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        conversation: str | None = None,
        fusion: ConversationFusion | None = None,
    ) -> list[SearchResult]:
        """The top ``k`` conversation memories for ``query``, fused the conversation way.

        Args:
            query: the question.
            k: how many memories.
            mode: ``lexical``, ``dense`` or ``hybrid``.
            conversation: only this conversation's memories (its ``conversation:<id>`` tag); None: all of the tenant.
            fusion: how to fuse and boost (default
                :data:`~hopmem.memory.conversation_search.CONVERSATION_FUSION`).

        Each memory's turns are in ``result.record.metadata["dia_ids"]``
        (:func:`hopmem.memory.conversations.turns_of`).
        """
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
            raise InputError(f"k must be an integer from 1 to 1000, not {k!r}.")
        if mode not in SEARCH_MODES:
            raise InputError(f"Unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}.")
        filters = check.search_filter(tags_=[f"conversation:{conversation}"] if conversation else None)
        searcher = ConversationSearcher(self.searcher, fusion)
        return searcher.search(self.tenant, query, k=k, mode=mode, filters=filters)

    def use_conversation_search(self, fusion: ConversationFusion | None = None) -> None:
        """Make this handle's searcher (``self.searcher``, which an :class:`hopmem.Agent` over this memory uses for
        every sub-query) the conversation search; :meth:`search_conversation` uses it whatever this says."""
        base = self.searcher
        if isinstance(base, ConversationSearcher):
            base.conversation_fusion = fusion or CONVERSATION_FUSION
            return
        self._searcher = ConversationSearcher(base, fusion)


def _as_conversation(value: Conversation | Mapping[str, Any] | Path | str) -> Conversation:
    if isinstance(value, Conversation):
        return value
    if isinstance(value, Mapping):
        return parse_conversation(value)
    if isinstance(value, str | Path):
        found = load_conversations(value)
        if len(found) != 1:
            raise InputError(
                f"{value} holds {len(found)} conversations; load them with load_conversations and add each."
            )
        return found[0]
    raise InputError(f"A conversation is a Conversation, a mapping or a file path, not {type(value).__name__}.")


__all__ = ["CONVERSATION_FUSION", "ConversationFusion", "ConversationReport", "ConversationsMixin", "turns_of"]
