"""The LangGraph agent: plan -> retrieve -> hop -> fuse -> rerank -> (search more?) -> answer -> remember.

- **plan**: the question is rewritten to stand alone (using the conversation) and kept whole or split into parallel
  sub-queries or a sequential chain (:mod:`hopmem.agents.planner`; the rules decide by default, or the LLM under a
  JSON schema with the rules as its fallback).
- **retrieve**: hybrid search per sub-query; in a chain, ``{k}`` in a later sub-query is filled with a short answer
  drawn from sub-query k's evidence.
- **hop**: TreeHop (:mod:`hopmem.agents.multihop`) follows multi-hop evidence in embedding space from each
  sub-query's embedding, no LLM involved.
- **fuse**: every list is fused by rank-score fusion and weighted by trust (:mod:`hopmem.agents.evidence`).
- **rerank**: the reranker (:mod:`hopmem.agents.rerank`) orders the best ``rerank_depth`` candidates; the best
  ``top_k`` become the evidence. A sufficiency check then decides whether to search more: while a sub-query has no
  passage among the evidence and rounds are left (``max_search_rounds``, a hard bound), retrieval runs again deeper.
- **answer**: from numbered evidence, citing only what it was given; extractive without an LLM (trace warning).
- **remember**: the question, the answer and the cited ids go back into the memory as an ``agent`` memory derived
  from the cited memories, through the trust gate.

The graph's state holds only JSON-ready data so that conversations can be checkpointed in SQLite; the searcher, the
LLM, the hop model, the reranker and the write-back function are bound into the nodes when the graph is built.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from hopmem.agents.citations import attribute_citations, cited_numbers, strip_invalid_markers
from hopmem.agents.evidence import brief, fuse_lists, passage_text
from hopmem.agents.extractive import extractive_answer
from hopmem.agents.planner import CHAIN_MIN_WORDS, bridge_answer, fill_placeholders, plan_question
from hopmem.agents.prompts import answer_messages
from hopmem.agents.trace import timed_step
from hopmem.memory.errors import HopmemError, LLMError

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from hopmem.agents.llm.base import ChatLLM, Message
    from hopmem.agents.multihop import TreeHopRetriever
    from hopmem.agents.rerank import Reranker
    from hopmem.memory.hybrid import HybridSearcher

log = logging.getLogger(__name__)

RememberFn = Callable[[str, str, list[int]], dict[str, Any]]
"""Write-back: ``(question, answer, cited memory ids) -> {"id", "quarantined"}``; raises HopmemError when refused."""


class AgentState(TypedDict, total=False):
    """What flows through the graph. ``history`` accumulates over a conversation; the rest is per question."""

    question: str
    tenant: str
    history: Annotated[list[dict[str, str]], operator.add]
    plan: dict[str, Any]
    round: int
    queries: list[str]
    lists: dict[str, list[dict[str, Any]]]
    candidates: list[dict[str, Any]]
    ranking: list[int]
    evidence: list[dict[str, Any]]
    sufficient: bool
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
    decompose: bool = True
    planner: str = "rules"
    max_subqueries: int = 3
    chain_min_words: int = CHAIN_MIN_WORDS
    max_search_rounds: int = 2
    fusion: str = "rsf"
    hop_weight: float = 0.25
    rerank_depth: int = 20
    remember: bool = True


def build_graph(
    searcher: HybridSearcher,
    llm: ChatLLM | None,
    config: AgentConfig,
    *,
    checkpointer: Any = None,
    hopper: TreeHopRetriever | None = None,
    reranker: Reranker | None = None,
    remember: RememberFn | None = None,
    reranker_warning: str | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the agent's graph.

    Args:
        searcher: hybrid search over the memory.
        llm: the model that plans and answers, or None (rule-based plan, extractive answers).
        config: graph settings.
        checkpointer: a LangGraph checkpointer (SQLite for conversations) or None.
        hopper: TreeHop multi-hop retrieval for the hop step, or None to skip it.
        reranker: orders the fused candidates, or None to keep the fused order.
        remember: writes the answer back into the memory, or None to skip the remember step.
        reranker_warning: why the configured reranker is not in use (shown in the rerank step of every trace).
    """
    from langgraph.graph import END, START, StateGraph

    def plan(state: AgentState) -> dict[str, Any]:
        history = _recent(state, config)
        with timed_step("plan") as step:
            result = plan_question(
                llm,
                state["question"],
                history,
                max_subqueries=config.max_subqueries,
                chain_min_words=config.chain_min_words,
                decompose=config.decompose,
                decide="rules" if config.planner == "rules" else "llm",
            )
            step.update(result.to_dict())
        return {"plan": result.to_dict(), "round": 0, "lists": {}, "trace": [step]}

    def retrieve(state: AgentState) -> dict[str, Any]:
        tenant, planned = state["tenant"], state["plan"]
        rnd = int(state.get("round") or 0) + 1
        k = max(config.top_k, config.retrieve_k) * rnd
        lists = dict(state.get("lists") or {})
        queries: list[str] = []
        searched: dict[str, list[dict[str, Any]]] = {}

        def search(query: str) -> list[dict[str, Any]]:
            # A chain's first step is often the question itself: search each text once per round.
            if query not in searched:
                searched[query] = [r.to_dict() for r in searcher.search(tenant, query, k=k, mode=config.search_mode)]
            return list(searched[query])

        with timed_step("retrieve", round=rnd, k=k, mode=config.search_mode) as step:
            answers: list[str] = []
            subs = []
            standalone = str(planned.get("standalone") or state["question"])
            if list(planned["queries"]) != [standalone]:
                # A split never loses the question's own retrieval: sub-queries add evidence, they do not replace it.
                lists["q0"] = search(standalone)
                subs.append({"n": 0, "query": standalone, "results": brief(lists["q0"])})
            for n, raw in enumerate(planned["queries"], start=1):
                query = fill_placeholders(raw, answers) if planned["mode"] == "sequential" else raw
                found = search(query)
                lists[f"q{n}"] = found
                queries.append(query)
                sub: dict[str, Any] = {"n": n, "query": query, "results": brief(found)}
                if planned["mode"] == "sequential" and n < len(planned["queries"]):
                    answers.append(bridge_answer(llm, query, [passage_text(p) for p in found[: config.top_k]]))
                    sub["bridge_answer"] = answers[-1]
                subs.append(sub)
            step["subqueries"] = subs
        return {"round": rnd, "queries": queries, "lists": lists, "trace": [*(state.get("trace") or []), step]}

    def hop(state: AgentState) -> dict[str, Any]:
        lists = dict(state.get("lists") or {})
        rnd = int(state.get("round") or 1)
        with timed_step("hop", method="treehop" if hopper is not None else "none") as step:
            if hopper is None or hopper.hops < 2 or searcher.embedder is None:
                step["skipped"] = "no TreeHop model" if hopper is None else "hops < 2 or no embedder"
            else:
                trees = []
                for n, query in enumerate(state.get("queries") or [], start=1):
                    tree = hopper.retrieve(state["tenant"], searcher.embed_query(query), hops=hopper.hops + rnd - 1)
                    # The tree's later hops are its contribution; its first hop repeats dense retrieval of the query.
                    hopped = [node for node in tree.nodes if node.hop > 1]
                    lists[f"treehop:q{n}"] = [{"id": node.memory_id, "score": node.score} for node in hopped]
                    seen = {int(p["id"]) for p in lists.get(f"q{n}", [])}
                    trees.append(
                        {"n": n, **tree.to_dict(), "added": [i for i in tree.ids if i not in seen]},
                    )
                step["trees"] = trees
        return {"lists": lists, "trace": [*(state.get("trace") or []), step]}

    def fuse(state: AgentState) -> dict[str, Any]:
        lists = state.get("lists") or {}
        with timed_step("fuse", fusion=config.fusion, lists=sorted(lists)) as step:
            weights = {name: config.hop_weight for name in lists if name.startswith("treehop:")}
            candidates = fuse_lists(
                searcher,
                state["tenant"],
                lists,
                fusion=config.fusion,
                depth=max(config.rerank_depth, config.top_k),
                weights=weights,
            )
            step["weights"] = weights
            step["results"] = brief(candidates)
        return {"candidates": candidates, "trace": [*(state.get("trace") or []), step]}

    def rerank(state: AgentState) -> dict[str, Any]:
        candidates = state.get("candidates") or []
        name = reranker.name if reranker is not None else "none"
        with timed_step("rerank", reranker=name, n_candidates=len(candidates)) as step:
            if reranker_warning:
                step["warning"] = reranker_warning
            ranking = _rerank(reranker, _standalone(state), candidates, step, searcher=searcher)
            evidence = ranking[: config.top_k]
            step["ranking"] = brief(ranking)
            sufficient, reason = _sufficient(state, evidence, config)
            step["sufficient"], step["reason"] = sufficient, reason
        return {
            "ranking": [int(p["id"]) for p in ranking],
            "evidence": evidence,
            "sufficient": sufficient,
            "trace": [*(state.get("trace") or []), step],
        }

    def answer(state: AgentState) -> dict[str, Any]:
        from langgraph.config import get_config

        question = state["question"]
        evidence = state.get("evidence") or []
        history = _recent(state, config)
        streaming = bool((get_config().get("configurable") or {}).get("stream_tokens"))
        with timed_step("answer", n_evidence=len(evidence)) as step:
            text = _generate(llm, question, evidence, history, config, step, streaming=streaming)
            text = strip_invalid_markers(text, len(evidence))
            if evidence and not cited_numbers(text, len(evidence)):
                text = attribute_citations(text, evidence)
                step["citations_by"] = "overlap"
            cited = set(cited_numbers(text, len(evidence)))
            step["cited"] = sorted(cited)
        citations = [
            {"n": n, **{k: e.get(k) for k in ("id", "title", "text", "score")}, "cited": n in cited}
            for n, e in enumerate(evidence, start=1)
        ]
        turns = [{"role": "user", "content": question}, {"role": "assistant", "content": text}]
        return {
            "answer": text,
            "citations": citations,
            "history": turns,
            "trace": [*(state.get("trace") or []), step],
        }

    def write_back(state: AgentState) -> dict[str, Any]:
        cited = [int(c["id"]) for c in state.get("citations") or [] if c.get("cited")]
        with timed_step("remember") as step:
            if remember is None or not config.remember:
                step["skipped"] = "write-back is off"
            elif not cited:
                step["skipped"] = "the answer cites no memory"
            else:
                try:
                    step.update(remember(state["question"], state.get("answer") or "", cited))
                except HopmemError as exc:
                    log.warning("The answer was not remembered: %s", exc)
                    step["warning"] = f"not remembered: {exc}"
        return {"trace": [*(state.get("trace") or []), step]}

    def after_rerank(state: AgentState) -> str:
        return "answer" if state.get("sufficient", True) else "retrieve"

    builder = StateGraph(AgentState)
    for name, node in (
        ("plan", plan),
        ("retrieve", retrieve),
        ("hop", hop),
        ("fuse", fuse),
        ("rerank", rerank),
        ("answer", answer),
        ("remember", write_back),
    ):
        builder.add_node(name, node)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "retrieve")
    builder.add_edge("retrieve", "hop")
    builder.add_edge("hop", "fuse")
    builder.add_edge("fuse", "rerank")
    builder.add_conditional_edges("rerank", after_rerank, {"answer": "answer", "retrieve": "retrieve"})
    builder.add_edge("answer", "remember")
    builder.add_edge("remember", END)
    return builder.compile(checkpointer=checkpointer)


def _recent(state: AgentState, config: AgentConfig) -> list[Message]:
    return (state.get("history") or [])[-2 * config.history_turns :]


def _standalone(state: AgentState) -> str:
    return str((state.get("plan") or {}).get("standalone") or state["question"])


def _rerank(
    reranker: Reranker | None,
    query: str,
    candidates: list[dict[str, Any]],
    step: dict[str, Any],
    *,
    searcher: HybridSearcher | None = None,
) -> list[dict[str, Any]]:
    """All candidates in the reranker's order, its scores weighed by trust; the fused order without a reranker.

    The fused order is already trust-weighted; a reranker scores text alone, so its scores are weighed again here
    (the rule fusion uses, :func:`hopmem.memory.fusion.weight_by_trust`), or a distrusted memory that reads well would
    climb back to the top.
    """
    from hopmem.memory.fusion import weight_by_trust
    from hopmem.memory.records import Hit

    if reranker is None or reranker.name == "none" or not candidates:
        return list(candidates)
    try:
        order = reranker.rank(query, [passage_text(c) for c in candidates])
    except HopmemError as exc:
        log.warning("Reranking failed, keeping the fused order: %s", exc)
        step["warning"] = f"reranker failed ({exc}); fused order kept"
        return list(candidates)
    selections = getattr(reranker, "last_trace", None)
    if selections:  # a reasoning reranker (setwise): its choices and reasoning go into the trace and the UI
        step["reasoning"] = [
            {
                "place": int(entry.get("round", 0)) + 1,
                "window": [int(candidates[i]["id"]) for i in entry.get("window", [])],
                "chosen": int(candidates[entry["choice"]]["id"]),
                "reasoning": str(entry.get("reasoning", ""))[:1000],
                "fallback": bool(entry.get("fallback")),
            }
            for entry in selections
            if entry.get("choice") is not None
        ]
    by_id = {int(c["id"]): c for c in candidates}
    hits = [Hit(int(candidates[i]["id"]), float(score)) for i, score in order]
    raw = {h.memory_id: h.score for h in hits}
    if searcher is not None and searcher.trust is not None:
        params = searcher.trust.params
        trust = {i: float(c["trust"]) for i, c in by_id.items() if c.get("trust") is not None}
        hits = weight_by_trust(hits, trust, floor=params.rank_floor, neutral=params.prior_mean)
    return [
        {**by_id[h.memory_id], "rerank_score": round(raw[h.memory_id], 6), "score": round(h.score, 6)} for h in hits
    ]


def _sufficient(state: AgentState, evidence: list[dict[str, Any]], config: AgentConfig) -> tuple[bool, str]:
    """Whether to stop searching: every sub-query has a passage among the evidence, or no round is left.

    A round that found fewer passages than it asked for has exhausted the memory, so searching deeper cannot help.
    """
    rnd = int(state.get("round") or 1)
    if rnd >= config.max_search_rounds:
        return True, f"round {rnd} of at most {config.max_search_rounds}"
    lists = state.get("lists") or {}
    k = max(config.top_k, config.retrieve_k) * rnd
    if all(len(lists.get(f"q{n}", [])) < k for n in range(1, len(state.get("queries") or []) + 1)):
        return True, "the memory has no more passages for these queries"
    ids = {int(e["id"]) for e in evidence}
    uncovered = [
        n
        for n in range(1, len(state.get("queries") or []) + 1)
        if not ids & {int(p["id"]) for p in lists.get(f"q{n}", []) + lists.get(f"treehop:q{n}", [])}
    ]
    if uncovered:
        return False, f"sub-quer{'y' if len(uncovered) == 1 else 'ies'} {uncovered} found no evidence; searching deeper"
    return True, "every sub-query has evidence"


def _generate(
    llm: ChatLLM | None,
    question: str,
    evidence: list[dict[str, Any]],
    history: list[Message],
    config: AgentConfig,
    step: dict[str, Any],
    *,
    streaming: bool = False,
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
        if streaming:
            text = _stream_tokens(llm, messages, config)
            step["usage"] = {"completion_tokens": llm.count_tokens(text)}
            step["model"] = llm.name
        else:
            completion = llm.complete(messages, max_tokens=config.max_tokens, temperature=config.temperature)
            step["model"] = completion.model
            step["usage"] = completion.usage()
            text = completion.text
    except LLMError as exc:
        log.warning("LLM failed, answering extractively: %s", exc)
        step["mode"] = "extractive"
        step["warning"] = f"LLM failed ({exc}); extractive answer"
        return extractive_answer(question, evidence)
    step["mode"] = "llm"
    text = text.strip()
    if not text:
        step["warning"] = "the LLM returned nothing; extractive answer"
        return extractive_answer(question, evidence)
    return text


def _stream_tokens(llm: ChatLLM, messages: list[Message], config: AgentConfig) -> str:
    """Generate with the LLM's stream, sending each piece to LangGraph's custom stream as ``{"token": piece}``."""
    from langgraph.config import get_stream_writer

    writer = get_stream_writer()
    pieces = []
    for piece in llm.stream(messages, max_tokens=config.max_tokens, temperature=config.temperature):
        pieces.append(piece)
        writer({"token": piece})
    return "".join(pieces)
