"""The LangGraph agent: plan -> retrieve -> hop -> fuse -> rerank -> (search more?) -> answer -> remember.

This module only wires the graph; each step is a function of ``(state, deps)`` in :mod:`hopmem.agents.nodes`:

- **plan**: the question is rewritten to stand alone (using the conversation) and kept whole or split into parallel
  sub-queries or a sequential chain (:mod:`hopmem.agents.planner`; the rules decide by default, or the LLM under a
  JSON schema with the rules as its fallback).
- **retrieve**: hybrid search per sub-query; in a chain, ``{k}`` in a later sub-query is filled with a short answer
  drawn from sub-query k's evidence.
- **hop**: TreeHop (:mod:`hopmem.agents.multihop`) follows multi-hop evidence in embedding space from each
  sub-query's embedding, no LLM involved.
- **fuse**: every list is fused by rank-score fusion and weighted by trust, on the searcher's one fusion path
  (:mod:`hopmem.agents.evidence`, :meth:`hopmem.memory.hybrid.HybridSearcher.fuse_results`).
- **rerank**: the reranker (:mod:`hopmem.agents.rerank`) orders the best ``rerank_depth`` candidates; the best
  ``top_k`` become the evidence. A sufficiency check then decides whether to search more: while a sub-query has no
  passage among the evidence and rounds are left (``max_search_rounds``, a hard bound), retrieval runs again deeper.
- **answer**: from numbered evidence, citing only what it was given; extractive without an LLM (trace warning).
- **remember**: the question, the answer and the cited ids go back into the memory as an ``agent`` memory derived
  from the cited memories, through the trust gate.

The graph's state (:mod:`hopmem.agents.state`) holds only JSON-ready data so that conversations can be checkpointed
in SQLite; the searcher, the LLM, the hop model, the reranker and the write-back function are one
:class:`~hopmem.agents.deps.GraphDeps`, bound into the nodes when the graph is built.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from hopmem.agents import nodes
from hopmem.agents.deps import GraphDeps
from hopmem.agents.state import AgentState

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

NODES = (
    ("plan", nodes.plan),
    ("retrieve", nodes.retrieve),
    ("hop", nodes.hop),
    ("fuse", nodes.fuse),
    ("rerank", nodes.rerank),
    ("answer", nodes.answer),
    ("remember", nodes.remember),
)
"""The steps by name, in the order of a run (the trace's step names)."""


def build_graph(deps: GraphDeps, *, checkpointer: Any = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the agent's graph over ``deps``.

    Args:
        deps: what the nodes need: the searcher, the LLM (or None), the config, the hop model, the reranker and the
            write-back function.
        checkpointer: a LangGraph checkpointer (SQLite for conversations) or None.
    """
    from langgraph.graph import END, START, StateGraph

    builder = StateGraph(AgentState)
    for name, node in NODES:
        builder.add_node(name, partial(node, deps=deps))
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "retrieve")
    builder.add_edge("retrieve", "hop")
    builder.add_edge("hop", "fuse")
    builder.add_edge("fuse", "rerank")
    builder.add_conditional_edges("rerank", nodes.route_after_rerank, {"answer": "answer", "retrieve": "retrieve"})
    builder.add_edge("answer", "remember")
    builder.add_edge("remember", END)
    return builder.compile(checkpointer=checkpointer)
