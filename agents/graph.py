"""The LangGraph agent: retrieve -> hop -> answer (the later steps of the design plug in between).

The hop step follows multi-hop evidence in embedding space with TreeHop (:mod:`hopmem.agents.multihop`): the
question's embedding and each retrieved passage give next query embeddings, no LLM involved; the tree's passages are
fused with the retrieved list and the best ``top_k`` become the evidence. Without a TreeHop model (or with
``treehop_hops`` = 1) the step passes the retrieved list through.

The graph's state holds only JSON-ready data so that conversations can be checkpointed in SQLite; the searcher and
the LLM are bound into the nodes when the graph is built.
"""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from hopmem.agents.citations import attribute_citations, cited_numbers, strip_invalid_markers
from hopmem.agents.extractive import extractive_answer
from hopmem.agents.prompts import answer_messages
from hopmem.agents.trace import timed_step
from hopmem.memory.errors import LLMError

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from hopmem.agents.llm.base import ChatLLM
    from hopmem.agents.multihop import TreeHopRetriever
    from hopmem.memory.hybrid import HybridSearcher

log = logging.getLogger(__name__)


class AgentState(TypedDict, total=False):
    """What flows through the graph. ``history`` accumulates over a conversation; the rest is per question."""

    question: str
    tenant: str
    history: Annotated[list[dict[str, str]], operator.add]
    query: str
    evidence: list[dict[str, Any]]
    answer: str
    citations: list[dict[str, Any]]
    trace: list[dict[str, Any]]


@dataclass
class AgentConfig:
    """The knobs of the graph (filled from :class:`hopmem.Settings`)."""

    top_k: int = 3
    retrieve_k: int = 10
    search_mode: str = "hybrid"
    max_tokens: int = 160
    temperature: float = 0.0
    history_turns: int = 4


def build_graph(
    searcher: HybridSearcher,
    llm: ChatLLM | None,
    config: AgentConfig,
    *,
    checkpointer: Any = None,
    hopper: TreeHopRetriever | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the retrieve -> hop -> answer graph.

    Args:
        searcher: hybrid search over the memory.
        llm: the answering model, or None for extractive answers.
        config: graph settings.
        checkpointer: a LangGraph checkpointer (SQLite for conversations) or None.
        hopper: TreeHop multi-hop retrieval for the hop step, or None to pass the retrieved list through.
    """
    from langgraph.graph import END, START, StateGraph

    def retrieve(state: AgentState) -> dict[str, Any]:
        question = state["question"]
        history = state.get("history") or []
        previous = [t["content"] for t in history if t["role"] == "user"]
        # Follow-up questions ("and when was it built?") lean on the previous question for retrieval.
        query = f"{previous[-1]} {question}" if previous else question
        k = max(config.top_k, config.retrieve_k)
        with timed_step("retrieve", query=query, mode=config.search_mode, k=k) as step:
            results = searcher.search(state["tenant"], query, k=k, mode=config.search_mode)
            evidence = [r.to_dict() for r in results]
            step["results"] = [{"id": e["id"], "score": e["score"], "ranks": e["ranks"]} for e in evidence]
        return {"query": query, "evidence": evidence, "trace": [step]}

    def hop(state: AgentState) -> dict[str, Any]:
        retrieved = state.get("evidence") or []
        with timed_step("hop", method="treehop" if hopper is not None else "none") as step:
            if hopper is None or hopper.hops < 2 or searcher.embedder is None:
                step["skipped"] = "no TreeHop model" if hopper is None else "hops < 2 or no embedder"
                evidence = retrieved[: config.top_k]
            else:
                evidence = _hop_evidence(searcher, hopper, state["tenant"], state["query"], retrieved, config, step)
        return {"evidence": evidence, "trace": [*(state.get("trace") or []), step]}

    def answer(state: AgentState) -> dict[str, Any]:
        question = state["question"]
        evidence = state.get("evidence") or []
        history = (state.get("history") or [])[-2 * config.history_turns :]
        with timed_step("answer", n_evidence=len(evidence)) as step:
            text = _generate(llm, question, evidence, history, config, step)
            text = strip_invalid_markers(text, len(evidence))
            if evidence and not cited_numbers(text, len(evidence)):
                text = attribute_citations(text, evidence)
                step["citations_by"] = "overlap"
            cited = set(cited_numbers(text, len(evidence)))
            step["cited"] = sorted(cited)
        citations = [
            {"n": n, **{k: e[k] for k in ("id", "title", "text", "score")}, "cited": n in cited}
            for n, e in enumerate(evidence, start=1)
        ]
        turns = [{"role": "user", "content": question}, {"role": "assistant", "content": text}]
        return {
            "answer": text,
            "citations": citations,
            "history": turns,
            "trace": [*(state.get("trace") or []), step],
        }

    builder = StateGraph(AgentState)
    builder.add_node("retrieve", retrieve)
    builder.add_node("hop", hop)
    builder.add_node("answer", answer)
    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", "hop")
    builder.add_edge("hop", "answer")
    builder.add_edge("answer", END)
    return builder.compile(checkpointer=checkpointer)


def _hop_evidence(
    searcher: HybridSearcher,
    hopper: TreeHopRetriever,
    tenant: str,
    query: str,
    retrieved: list[dict[str, Any]],
    config: AgentConfig,
    step: dict[str, Any],
) -> list[dict[str, Any]]:
    """Fuse the retrieved list with the TreeHop tree's passages and keep the best ``top_k`` as evidence."""
    from hopmem.memory.records import Hit, SearchResult

    tree = hopper.retrieve(tenant, searcher.embed_query(query))
    step["tree"] = tree.to_dict()
    lists = {
        "retrieved": [Hit(int(e["id"]), float(e["score"])) for e in retrieved],
        "treehop": [Hit(n.memory_id, n.score) for n in tree.nodes],
    }
    fused = searcher.fuse(lists)[: config.top_k]
    by_id = {int(e["id"]): e for e in retrieved}
    new_ids = [h.memory_id for h in fused if h.memory_id not in by_id]
    records = {r.id: r for r in searcher.store.get(tenant, new_ids)}
    tree_rank = {n.memory_id: r for r, n in enumerate(tree.nodes, start=1)}
    evidence = []
    for hit in fused:
        if hit.memory_id in by_id:
            entry = dict(by_id[hit.memory_id])
        elif hit.memory_id in records:
            entry = SearchResult(records[hit.memory_id], hit.score, {}).to_dict()
        else:
            continue
        entry["score"] = hit.score
        if hit.memory_id in tree_rank:
            entry["ranks"] = {**entry.get("ranks", {}), "treehop": tree_rank[hit.memory_id]}
        evidence.append(entry)
    step["added_by_hop"] = [e["id"] for e in evidence if int(e["id"]) not in by_id]
    step["results"] = [{"id": e["id"], "score": round(float(e["score"]), 6), "ranks": e["ranks"]} for e in evidence]
    return evidence


def _generate(
    llm: ChatLLM | None,
    question: str,
    evidence: list[dict[str, Any]],
    history: list[dict[str, str]],
    config: AgentConfig,
    step: dict[str, Any],
) -> str:
    if not evidence:
        step["mode"] = "no-evidence"
        return "I could not find anything about that in the memory."
    if llm is None:
        step["mode"] = "extractive"
        step["warning"] = "no LLM configured: extractive answer"
        return extractive_answer(question, evidence)
    budget = llm.context_window - config.max_tokens - 200 - sum(llm.count_tokens(t["content"]) for t in history)
    messages = answer_messages(
        question, evidence, history=history, budget_tokens=max(budget, 64), count=llm.count_tokens
    )
    try:
        completion = llm.complete(messages, max_tokens=config.max_tokens, temperature=config.temperature)
    except LLMError as exc:
        log.warning("LLM failed, answering extractively: %s", exc)
        step["mode"] = "extractive"
        step["warning"] = f"LLM failed ({exc}); extractive answer"
        return extractive_answer(question, evidence)
    step["mode"] = "llm"
    step["model"] = completion.model
    step["usage"] = completion.usage()
    text = completion.text.strip()
    if not text:
        step["warning"] = "the LLM returned nothing; extractive answer"
        return extractive_answer(question, evidence)
    return text
