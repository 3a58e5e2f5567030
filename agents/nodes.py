"""The nodes of the agent's graph: plain functions of ``(state, deps)`` that return their update of the state.

Each node reads the :class:`~hopmem.agents.state.AgentState`, does one step with what :class:`GraphDeps` holds, and
returns only the fields it changes; its trace record goes out as ``{"trace": [step]}`` and the state's reducer
appends it. :func:`hopmem.agents.graph.build_graph` binds the deps and wires the nodes; a test can call any node
alone.

- :func:`plan`: the question rewritten to stand alone and kept whole or split (:mod:`hopmem.agents.planner`).
- :func:`retrieve`: hybrid search per sub-query (a chain fills ``{k}`` with the bridge answer of sub-query k) and,
  with ``hyde`` on and an LLM, of the question followed by the LLM's guess at its answer (:mod:`hopmem.agents.hyde`).
- :func:`hop`: TreeHop follows multi-hop evidence in embedding space from each sub-query's embedding.
- :func:`fuse`: every list fused and trust-weighted through the searcher's one fusion path
  (:mod:`hopmem.agents.evidence`).
- :func:`rerank`: the reranker orders the candidates (its scores weighed by trust again); the best ``top_k`` are the
  evidence, and :func:`check_sufficient` decides whether to search more (:func:`route_after_rerank`). When every
  candidate is a conversation memory, the ``conversation_rerank_*`` settings apply: the reranker reads the turn
  without its date (with and without the speaker's name, :mod:`hopmem.agents.conversation_rerank`), blends with the
  fused order by its own weight, and the fused list's best N stay first (:func:`keep_floor`).
- :func:`answer`: from numbered evidence, citing only what it was given; extractive without an LLM.
- :func:`remember`: the answer goes back into the memory as an ``agent`` memory derived from what it cites.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hopmem.agents.bridge import bridge_answer, condense
from hopmem.agents.citations import attribute_citations, cited_numbers, strip_invalid_markers
from hopmem.agents.config import HISTORY_TURNS, SEARCH_MODE
from hopmem.agents.conversation_rerank import conversation_order
from hopmem.agents.evidence import as_passages, brief, fuse_lists, passage_text
from hopmem.agents.extractive import extractive_answer
from hopmem.agents.hyde import hypothetical_query
from hopmem.agents.injection import defang, holds_instruction
from hopmem.agents.planner import fill_placeholders, plan_question
from hopmem.agents.prompts import answer_messages
from hopmem.agents.state import AgentState, Citation, Passage, Step
from hopmem.agents.trace import timed_step
from hopmem.memory.conversations import SOURCE_CLASS as CONVERSATION_SOURCE
from hopmem.memory.conversations import without_date_label
from hopmem.memory.errors import HopmemError, LLMError
from hopmem.memory.records import Hit

if TYPE_CHECKING:
    from hopmem.agents.config import AgentConfig
    from hopmem.agents.deps import GraphDeps
    from hopmem.agents.llm.base import ChatLLM, Message
    from hopmem.agents.rerank import Reranker
    from hopmem.memory.hybrid import HybridSearcher

log = logging.getLogger(__name__)


def plan(state: AgentState, deps: GraphDeps) -> AgentState:
    """Decide how to search: keep the question whole or split it; resets the per-question lists and rounds."""
    config = deps.config
    with timed_step("plan") as step:
        result = plan_question(
            deps.llm,
            state["question"],
            recent_history(state),
            max_subqueries=config.max_subqueries,
            chain_min_words=config.chain_min_words,
            decompose=config.decompose,
            decide="tuned" if config.planner == "tuned" else ("rules" if config.planner == "rules" else "llm"),
            plan_llm=deps.planner_llm,
        )
        step.update(result.to_dict())
    return {"plan": result.to_dict(), "round": 0, "lists": {}, "hyde_query": "", "trace": [step]}


def retrieve(state: AgentState, deps: GraphDeps) -> AgentState:
    """Search every sub-query (deeper each round); a split also searches the whole question, as list ``q0``."""
    config, searcher = deps.config, deps.searcher
    tenant, planned = state["tenant"], state["plan"]
    rnd = int(state.get("round") or 0) + 1
    k = max(config.top_k, config.retrieve_k) * rnd
    lists = dict(state.get("lists") or {})
    queries: list[str] = []
    searched: dict[str, list[Passage]] = {}

    def search(query: str) -> list[Passage]:
        # A chain's first step is often the question itself: search each text once per round.
        if query not in searched:
            searched[query] = as_passages(searcher.search(tenant, query, k=k, mode=SEARCH_MODE))
        return list(searched[query])

    with timed_step("retrieve", round=rnd, k=k, mode=SEARCH_MODE) as step:
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
                llm = deps.llm if config.bridge == "llm" else None  # None: picked from the evidence, no LLM call
                answers.append(bridge_answer(llm, query, [passage_text(p) for p in found[: config.top_k]]))
                sub["bridge_answer"], sub["bridge_by"] = answers[-1], "llm" if llm is not None else "extractive"
            subs.append(sub)
        step["subqueries"] = subs
        hyde_query = str(state.get("hyde_query") or "")
        if config.hyde:
            hyde_query = _search_hypothesis(deps, standalone, hyde_query, search, lists, step)
    return {"round": rnd, "queries": queries, "lists": lists, "hyde_query": hyde_query, "trace": [step]}


def _search_hypothesis(
    deps: GraphDeps,
    question: str,
    query: str,
    search: Callable[[str], list[Passage]],
    lists: dict[str, list[Passage]],
    step: Step,
) -> str:
    """Add list ``hyde`` (the question followed by the LLM's guess at its answer, :mod:`hopmem.agents.hyde`) and
    record it in ``step``; the guess is written in the first round and searched deeper in later ones (a round whose
    guess failed asks again in the next). Returns the query (``""`` when there is none)."""
    if deps.llm is None:
        step["hyde"] = {"skipped": "no LLM configured"}
        return ""
    warning = None
    written_ms = None
    if not query:
        started = time.perf_counter()
        found, warning = hypothetical_query(deps.llm, question, max_tokens=deps.config.hyde_max_tokens)
        query, written_ms = found or "", round((time.perf_counter() - started) * 1000, 2)
    if not query:
        step["hyde"] = {"skipped": warning or "no hypothetical answer", "ms": written_ms}
        if warning:
            step["warning"] = warning
        return ""
    lists["hyde"] = search(query)
    step["hyde"] = {"query": query, "ms": written_ms, "results": brief(lists["hyde"])}
    return query


def hop(state: AgentState, deps: GraphDeps) -> AgentState:
    """Add each sub-query's TreeHop tree (its later hops) as list ``treehop:q<n>``; one more hop each round."""
    hopper, searcher = deps.hopper, deps.searcher
    lists = dict(state.get("lists") or {})
    rnd = int(state.get("round") or 1)
    with timed_step("hop", method="treehop" if hopper is not None else "none") as step:
        if hopper is None or hopper.hops < 2 or searcher.embedder is None:
            step["skipped"] = "no TreeHop model" if hopper is None else "hops < 2 or no embedder"
        else:
            if hopper.choice:
                step["model"] = hopper.choice
            trees = []
            for n, query in enumerate(state.get("queries") or [], start=1):
                tree = hopper.retrieve(state["tenant"], searcher.embed_query(query), hops=hopper.hops + rnd - 1)
                # The tree's later hops are its contribution; its first hop repeats dense retrieval of the query.
                hopped = [node for node in tree.nodes if node.hop > 1]
                lists[f"treehop:q{n}"] = [Passage(id=node.memory_id, score=node.score) for node in hopped]
                seen = {int(p["id"]) for p in lists.get(f"q{n}", [])}
                trees.append(
                    {"n": n, **tree.to_dict(), "added": [i for i in tree.ids if i not in seen]},
                )
            step["trees"] = trees
    return {"lists": lists, "trace": [step]}


def fuse(state: AgentState, deps: GraphDeps) -> AgentState:
    """Fuse every list into the candidates (hop trees weighted by ``treehop_weight``), trust-weighted, best first."""
    config = deps.config
    lists = state.get("lists") or {}
    with timed_step("fuse", fusion=config.agent_fusion, lists=sorted(lists)) as step:
        weights = {name: config.treehop_weight for name in lists if name.startswith("treehop:")}
        candidates = fuse_lists(
            deps.searcher,
            state["tenant"],
            lists,
            fusion=config.agent_fusion,
            depth=max(config.rerank_depth, config.top_k),
            weights=weights,
        )
        step["weights"] = weights
        step["results"] = brief(candidates)
    return {"candidates": candidates, "trace": [step]}


def rerank(state: AgentState, deps: GraphDeps) -> AgentState:
    """Order the candidates by the reranker; the best ``top_k`` become the evidence; decide whether to search more."""
    config, reranker = deps.config, deps.reranker
    candidates = state.get("candidates") or []
    name = reranker.name if reranker is not None else "none"
    with timed_step("rerank", reranker=name, n_candidates=len(candidates)) as step:
        if deps.reranker_warning:
            step["warning"] = deps.reranker_warning
        conversation = is_conversation(candidates)
        if conversation:  # a per-source rule: conversation memories (docs/conversations.md)
            step["conversation"] = {
                "floor": config.conversation_rerank_floor,
                "floor_list": config.conversation_rerank_floor_list,
                "blend": config.conversation_rerank_blend,
                "date": config.conversation_rerank_date,
                "speaker": config.conversation_rerank_speaker,
            }
        ranking = rank_candidates(
            reranker,
            standalone_question(state),
            candidates,
            step,
            searcher=deps.searcher,
            blend=config.conversation_rerank_blend if conversation else None,
            read_date=config.conversation_rerank_date or not conversation,
            speaker=config.conversation_rerank_speaker if conversation else "keep",
        )
        if conversation and config.conversation_rerank_floor > 0:
            floor = candidates if config.conversation_rerank_floor_list == "fused" else whole_question_list(state)
            ranking = keep_floor(ranking, floor[: config.conversation_rerank_floor])
        evidence = ranking[: config.top_k]
        step["ranking"] = brief(ranking)
        sufficient, reason = check_sufficient(state, evidence, config)
        step["sufficient"], step["reason"] = sufficient, reason
    return {
        "ranking": [int(p["id"]) for p in ranking],
        "evidence": evidence,
        "sufficient": sufficient,
        "trace": [step],
    }


def route_after_rerank(state: AgentState) -> str:
    """The edge after :func:`rerank`: ``answer`` when the evidence suffices, else ``retrieve`` again."""
    return "answer" if state.get("sufficient", True) else "retrieve"


def answer(state: AgentState, deps: GraphDeps) -> AgentState:
    """Answer from the numbered evidence with citations; adds the question and the answer to the history.

    Inside a run whose config sets ``configurable.stream_tokens``, the LLM's tokens also go to LangGraph's custom
    stream as they come.
    """
    question = state["question"]
    evidence = state.get("evidence") or []
    streaming = _streaming_tokens()
    with timed_step("answer", n_evidence=len(evidence)) as step:
        shown, defanged = _without_instructions(evidence) if deps.config.injection_filter else (evidence, [])
        text = _generate(deps.llm, question, shown, recent_history(state), deps.config, step, streaming=streaming)
        if defanged:
            step["injections"] = defanged
            notice = f"instructions to the model removed from passage(s) {', '.join(map(str, defanged))}"
            step["warning"] = f"{step['warning']}; {notice}" if step.get("warning") else notice
        text = strip_invalid_markers(text, len(evidence))
        if evidence and not cited_numbers(text, len(evidence)):
            text = attribute_citations(text, evidence)
            step["citations_by"] = "overlap"
        cited = set(cited_numbers(text, len(evidence)))
        step["cited"] = sorted(cited)
    citations = [
        Citation(n=n, id=e["id"], title=e.get("title"), text=e.get("text"), score=e["score"], cited=n in cited)
        for n, e in enumerate(evidence, start=1)
    ]
    turns = [{"role": "user", "content": question}, {"role": "assistant", "content": text}]
    return {"answer": text, "citations": citations, "history": turns, "trace": [step]}


def remember(state: AgentState, deps: GraphDeps) -> AgentState:
    """Write the answer back as an ``agent`` memory derived from the memories it cites (through the trust gate)."""
    cited = [int(c["id"]) for c in state.get("citations") or [] if c.get("cited")]
    with timed_step("remember") as step:
        if deps.remember is None or not deps.config.remember_answers:
            step["skipped"] = "write-back is off"
        elif not cited:
            step["skipped"] = "the answer cites no memory"
        elif deps.config.injection_filter and holds_instruction(state.get("answer") or ""):
            step["skipped"] = "the answer holds an instruction to the model"
        else:
            try:
                step.update(deps.remember(state["question"], state.get("answer") or "", cited))
            except HopmemError as exc:
                log.warning("The answer was not remembered: %s", exc)
                step["warning"] = f"not remembered: {exc}"
    return {"trace": [step]}


def _without_instructions(evidence: list[Passage]) -> tuple[list[Passage], list[int]]:
    """The evidence as the answer step may show it (orders to the model removed) and the numbers of the passages
    that held one (see :mod:`hopmem.agents.injection`)."""
    shown: list[Passage] = []
    flagged: list[int] = []
    for n, passage in enumerate(evidence, start=1):
        text, removed = defang(str(passage.get("text") or ""))
        if removed:
            flagged.append(n)
            passage = {**passage, "text": text}
        shown.append(passage)
    return shown, flagged


def recent_history(state: AgentState) -> list[Message]:
    """The last :data:`~hopmem.agents.config.HISTORY_TURNS` turns of the conversation."""
    return (state.get("history") or [])[-2 * HISTORY_TURNS :]


def standalone_question(state: AgentState) -> str:
    """The question as the planner rewrote it to stand alone (the question itself before planning)."""
    return str((state.get("plan") or {}).get("standalone") or state["question"])


def rank_candidates(
    reranker: Reranker | None,
    query: str,
    candidates: list[Passage],
    step: Step,
    *,
    searcher: HybridSearcher | None = None,
    blend: float | None = None,
    read_date: bool = True,
    speaker: str = "keep",
) -> list[Passage]:
    """All candidates in the reranker's order, its scores weighed by trust; the fused order without a reranker.

    The fused order is already trust-weighted; a reranker scores text alone, so its scores are weighed again with
    the searcher's rule (:meth:`hopmem.memory.hybrid.HybridSearcher.weigh_by_trust`, over each candidate's fused
    trust), or a distrusted memory that reads well would climb back to the top. Without ``searcher`` the reranker's
    order stands as it is.

    ``blend`` replaces the weight of the fused order in a reranker that blends its scores with it (the
    cross-encoder's ``with_blend``; others are used as they are); ``read_date=False`` lets the reranker read a
    conversation memory without its leading ``[date]`` (:func:`hopmem.memory.conversations.without_date_label`);
    ``speaker`` says how it reads the speaker's name (:mod:`hopmem.agents.conversation_rerank`).
    """
    if reranker is None or reranker.name == "none" or not candidates:
        return list(candidates)
    texts = [passage_text(c) for c in candidates]
    if not read_date:
        texts = [without_date_label(t) for t in texts]
    try:
        order = conversation_order(reranker, query, texts, blend=blend, speaker=speaker)
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
    if searcher is not None:
        trust = {i: float(t) for i, c in by_id.items() if (t := c.get("trust")) is not None}
        hits = searcher.weigh_by_trust(hits, trust)
    return [
        {**by_id[h.memory_id], "rerank_score": round(raw[h.memory_id], 6), "score": round(h.score, 6)} for h in hits
    ]


def is_conversation(candidates: list[Passage]) -> bool:
    """Whether every candidate is a conversation memory (the conversation rules of the rerank step apply)."""
    return bool(candidates) and all(c.get("source_class") == CONVERSATION_SOURCE for c in candidates)


def whole_question_list(state: AgentState) -> list[Passage]:
    """What the search of the whole (stand-alone) question found: list ``q0`` beside sub-queries, else ``q1``."""
    lists = state.get("lists") or {}
    return list(lists.get("q0") or lists.get("q1") or [])


def keep_floor(ranking: list[Passage], floor: list[Passage]) -> list[Passage]:
    """``ranking`` with the ``floor`` passages first, in the ranking's order, then the rest of the ranking.

    A floor passage the ranking lacks (below the reranked depth) comes after the ranked floor passages, in the
    floor's order. On conversations the fused candidates (the whole question's hybrid search with the speaker boost,
    fused with its sub-queries' searches) choose which N memories come first and the reranker only orders them: the
    cross-encoder, trained on passages, demotes the other speaker's turns that adversarial questions ask about, so
    letting it choose the first N lost them, while the sub-queries' lists add turns the whole question's search
    misses (docs/conversations.md).
    """
    if not floor:
        return list(ranking)
    wanted = {int(p["id"]) for p in floor}
    first = [p for p in ranking if int(p["id"]) in wanted]
    placed = {int(p["id"]) for p in first}
    first += [p for p in floor if int(p["id"]) not in placed]
    return first + [p for p in ranking if int(p["id"]) not in wanted]


def check_sufficient(state: AgentState, evidence: list[Passage], config: AgentConfig) -> tuple[bool, str]:
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


def _streaming_tokens() -> bool:
    """Whether the current run asked for the answer's tokens as they come (False outside a graph run)."""
    from langgraph.config import get_config

    try:
        config = get_config()
    except RuntimeError:  # called alone, not by the graph
        return False
    return bool((config.get("configurable") or {}).get("stream_tokens"))


def _generate(
    llm: ChatLLM | None,
    question: str,
    evidence: list[Passage],
    history: list[Message],
    config: AgentConfig,
    step: Step,
    *,
    streaming: bool = False,
) -> str:
    """The answer's text: the LLM's from the numbered evidence, else (no LLM, an LLM error, nothing) extractive."""
    if not evidence:
        step["mode"] = "no-evidence"
        return "I could not find anything about that in the memory."
    if llm is None:
        step["mode"] = "extractive"
        step["warning"] = "no LLM configured: extractive answer"
        return extractive_answer(question, evidence)
    budget = llm.context_window - config.llm_max_tokens - 200 - sum(llm.count_tokens(t["content"]) for t in history)
    shown = evidence
    if config.answer_sentences:
        shown = [{**e, "text": condense(question, str(e.get("text") or ""), config.answer_sentences)} for e in evidence]
    messages = answer_messages(
        question,
        shown,
        history=history,
        budget_tokens=max(budget, 64),
        count=llm.count_tokens,
        guarded=config.injection_filter,
    )
    try:
        if streaming:
            text = _stream_tokens(llm, messages, config)
            step["usage"] = {"completion_tokens": llm.count_tokens(text)}
            step["model"] = llm.name
        else:
            completion = llm.complete(messages, max_tokens=config.llm_max_tokens, temperature=config.llm_temperature)
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
    for piece in llm.stream(messages, max_tokens=config.llm_max_tokens, temperature=config.llm_temperature):
        pieces.append(piece)
        writer({"token": piece})
    return "".join(pieces)
