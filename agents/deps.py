"""What the graph's nodes need besides the state: the searcher, the models and the settings, bound at build time.

The state holds only JSON-ready data (it is checkpointed); the objects that do the work live in one
:class:`GraphDeps`, which :func:`hopmem.agents.graph.build_graph` binds into every node. A node is a plain function
of ``(state, deps)``, so a test can call it alone with small real dependencies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hopmem.agents.config import AgentConfig

if TYPE_CHECKING:
    from hopmem.agents.llm.base import ChatLLM
    from hopmem.agents.multihop import TreeHopRetriever
    from hopmem.agents.rerank import Reranker
    from hopmem.memory.hybrid import HybridSearcher

RememberFn = Callable[[str, str, list[int]], dict[str, Any]]
"""Write-back: ``(question, answer, cited memory ids) -> {"id", "quarantined"}``; raises HopmemError when refused."""


@dataclass(frozen=True)
class GraphDeps:
    """The dependencies of the nodes.

    Args:
        searcher: hybrid search over the memory, and the one fusion path (fusion and trust weighting).
        llm: the model that plans and answers, or None (rule-based plan, extractive answers).
        config: the graph's settings.
        hopper: TreeHop multi-hop retrieval for the hop step, or None to skip it.
        reranker: orders the fused candidates, or None to keep the fused order.
        remember: writes the answer back into the memory, or None to skip the remember step.
        reranker_warning: why the configured reranker is not in use (shown in the rerank step of every trace).
        planner_llm: the model that plans when it is not ``llm``: the tuned planner's (``planner="tuned"``; None:
            the rules plan, with a warning) or a planning-only LLM (``planner="llm"``; None: ``llm`` plans).
    """

    searcher: HybridSearcher
    llm: ChatLLM | None = None
    config: AgentConfig = field(default_factory=AgentConfig)
    hopper: TreeHopRetriever | None = None
    reranker: Reranker | None = None
    remember: RememberFn | None = None
    reranker_warning: str | None = None
    planner_llm: ChatLLM | None = None
