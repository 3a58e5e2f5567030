"""Search over conversation memories: the engine's lexical and dense lists, fused the conversation way.

:class:`ConversationSearcher` is a :class:`~hopmem.memory.hybrid.HybridSearcher` whose :meth:`search` fuses with
:class:`ConversationFusion` (rank-score fusion with per-list weights) and then raises the memories spoken by a
speaker the query names (:func:`boost_named_speakers`). Everything else (ranked lists, ``fuse_results`` for the
agent's sub-query lists, trust weighting) is the hybrid searcher's. The agent uses it when its memory was switched
to conversation search (:meth:`hopmem.memory.engine.MemoryEngine.use_conversation_search`), so the agent's every
sub-query search is the same search ``hopmem eval memory`` measures as ``hybrid``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import HybridSearcher
from hopmem.memory.records import SearchFilter, SearchResult

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


@dataclass(frozen=True)
class ConversationFusion:
    """How conversation search fuses the lexical and dense lists.

    Attributes:
        method: ``rsf`` or ``rrf``.
        weights: the weight of each list by name.
        depth: candidates each retriever contributes before fusion.
        speaker_boost: a memory spoken by a speaker the query names (by name, as a word) has its fused score raised
            by this share (0 turns it off); applied to every mode, after fusion and before the cut to ``k``.
    """

    method: str = "rsf"
    weights: Mapping[str, float] = field(default_factory=lambda: {"lexical": 1.0, "dense": 0.7})
    depth: int = 30
    speaker_boost: float = 1.0


CONVERSATION_FUSION = ConversationFusion()
"""The fusion of conversation search (chosen on LoCoMo conversations 1-2, checked on 3-5: docs/conversations.md)."""


class ConversationSearcher(HybridSearcher):
    """A hybrid searcher with conversation fusion; built over another searcher's store, embedder, index and trust.

    Args:
        base: the searcher whose components are shared (the learned ranker is not used: it was trained on the
            default fusion's output).
        fusion: how to fuse (default :data:`CONVERSATION_FUSION`).
    """

    def __init__(self, base: HybridSearcher, fusion: ConversationFusion | None = None) -> None:
        self.conversation_fusion = fusion or CONVERSATION_FUSION
        super().__init__(
            base.store,
            base.embedder,
            index=base.index,
            fusion=base.fusion,
            rrf_k=base.rrf_k,
            depth=base.depth,
            trust=base.trust,
        )

    def search(
        self,
        tenant: str,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        depth: int | None = None,
        query_vector: NDArray[np.float32] | None = None,
        filters: SearchFilter | None = None,
    ) -> list[SearchResult]:
        """The top ``k`` memories of ``tenant`` for ``query``: fused by the conversation fusion, speakers boosted.

        A single list (lexical or dense mode) goes through rank-score fusion too, so every mode's scores are on the
        same scale when the speaker boost applies.

        Raises:
            InputError: on an empty query, an unknown mode or a missing tenant.
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError("The query is empty; give some words to search for.")
        fusion = self.conversation_fusion
        pool = max(depth or fusion.depth, k)
        lists = self.ranked_lists(tenant, query, mode, depth=pool, query_vector=query_vector, filters=filters)
        method = fusion.method if len(lists) > 1 else "rsf"
        results = self.fuse_results(tenant, lists, k=pool, fusion=method, weights=fusion.weights)
        if fusion.speaker_boost > 0:
            results = boost_named_speakers(query, results, fusion.speaker_boost)
        return results[:k]


def boost_named_speakers(query: str, results: list[SearchResult], boost: float) -> list[SearchResult]:
    """``results`` re-ordered with the score of each memory whose speaker the query names raised by ``boost``.

    A memory's speaker is ``metadata["speakers"]`` when it holds one speaker's words; it is named when the name
    occurs in the query as a word, case ignored. Questions about a person are mostly answered by that person's own
    turns; a boost (not a filter) keeps the other speaker's turns in reach, since people also speak about each other.
    """
    text = query.lower()
    found: dict[str, bool] = {}

    def named(result: SearchResult) -> bool:
        speakers = result.record.metadata.get("speakers") or []
        if not isinstance(speakers, list) or len(speakers) != 1:
            return False
        name = str(speakers[0]).lower()
        if name not in found:
            found[name] = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None
        return found[name]

    scored = [
        (r.score * (1.0 + boost) if r.score >= 0 and named(r) else r.score, position, r)
        for position, r in enumerate(results)
    ]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [dataclasses.replace(r, score=score) for score, _, r in scored]
