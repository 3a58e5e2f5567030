"""The knobs of the agent's graph, named as the settings name them.

Every field of :class:`AgentConfig` is a field of ``hopmem.Settings`` with the same name and default (a test keeps
them in step), so :meth:`AgentConfig.from_settings` copies them by name and a new knob is added in two places, not
three. The agents package may not import the SDK (the dependency direction is ``sdk -> agents -> memory``), hence
the copy by name instead of an import of ``Settings``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hopmem.agents.planner import CHAIN_MIN_WORDS

SEARCH_MODE = "hybrid"
"""How the agent searches each sub-query (``hopmem.memory.hybrid.SEARCH_MODES``)."""
HISTORY_TURNS = 4
"""Conversation turns (question and answer pairs) the planner and the answer step see."""


@dataclass(frozen=True)
class AgentConfig:
    """The graph's settings; each field is documented on ``hopmem.Settings`` under the same name."""

    top_k: int = 3
    retrieve_k: int = 10
    llm_max_tokens: int = 160
    answer_sentences: int = 2
    llm_temperature: float = 0.0
    decompose: bool = True
    planner: str = "rules"
    max_subqueries: int = 3
    chain_min_words: int = CHAIN_MIN_WORDS
    bridge: str = "extractive"
    max_search_rounds: int = 2
    hyde: bool = False
    hyde_max_tokens: int = 60
    agent_fusion: str = "rsf"
    treehop_weight: float = 0.25
    rerank_depth: int = 20
    conversation_rerank_floor: int = 10
    conversation_rerank_blend: float = 0.8
    conversation_rerank_date: bool = False
    conversation_rerank_floor_list: str = "fused"
    conversation_rerank_speaker: str = "mean"
    remember_answers: bool = True
    injection_filter: bool = True

    @classmethod
    def from_settings(cls, settings: object, **overrides: Any) -> AgentConfig:
        """The config that ``settings`` implies: each field is the attribute of the same name.

        Args:
            settings: any object with an attribute per field (``hopmem.Settings`` in practice).
            overrides: fields to set instead of reading them from ``settings``.

        Raises:
            AttributeError: when ``settings`` lacks a field; that is a programming error, not a user's.
            TypeError: when ``overrides`` names no field.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(f"AgentConfig has no field {', '.join(unknown)}.")
        return cls(**{name: overrides[name] if name in overrides else getattr(settings, name) for name in names})
