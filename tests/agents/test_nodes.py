"""The graph's nodes called alone, over a real SQLite store of the bundled sample (no LLM: extractive answers)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from hopmem.agents import nodes
from hopmem.agents.config import AgentConfig
from hopmem.agents.deps import GraphDeps
from hopmem.agents.state import AgentState, add_steps
from hopmem.memory.hybrid import HybridSearcher
from tests.agents.conftest import SAMPLE_TENANT

TENANT = SAMPLE_TENANT
PASSAGE_KEYS = {"id", "title", "text", "score", "source", "external_id", "ranks", "source_class", "agent", "trust"}


@pytest.fixture()
def deps(searcher: HybridSearcher) -> GraphDeps:
    return GraphDeps(searcher, config=AgentConfig(top_k=2))


def _run(state: AgentState, update: AgentState) -> AgentState:
    """``state`` with a node's update applied as the graph applies it (the history and trace reducers included)."""
    merged: dict[str, Any] = {**state, **update}
    merged["trace"] = add_steps(state.get("trace"), list(update.get("trace") or []))
    merged["history"] = [*(state.get("history") or []), *(update.get("history") or [])]
    return merged


def _planned(deps: GraphDeps, question: str) -> AgentState:
    state: AgentState = {"question": question, "tenant": TENANT, "history": []}
    return _run(state, nodes.plan(state, deps))


def test_plan_keeps_a_short_question_whole_and_starts_the_question(deps: GraphDeps) -> None:
    state: AgentState = {"question": "What causes the tides?", "tenant": TENANT, "history": [], "round": 2}
    update = nodes.plan(state, deps)
    assert update["plan"]["mode"] == "whole" and update["plan"]["queries"] == ["What causes the tides?"]
    assert update["plan"]["source"] == "rules"
    assert (update["round"], update["lists"]) == (0, {})  # the previous question's rounds and lists are gone
    assert [s["step"] for s in update["trace"]] == ["plan"] and update["trace"][0]["ms"] >= 0


def test_retrieve_searches_the_whole_question_beside_a_split(deps: GraphDeps) -> None:
    state = _planned(deps, "Who was born first, Augustin-Jean Fresnel or Karl von Frisch?")
    assert state["plan"]["mode"] == "parallel"
    update = nodes.retrieve(state, deps)
    assert update["round"] == 1 and len(update["queries"]) == 2
    assert sorted(update["lists"]) == ["q0", "q1", "q2"]
    assert all(set(p) == PASSAGE_KEYS for found in update["lists"].values() for p in found)
    (step,) = update["trace"]
    assert (step["step"], step["round"], step["k"], step["mode"]) == ("retrieve", 1, 10, "hybrid")
    assert [s["n"] for s in step["subqueries"]] == [0, 1, 2]
    assert "text" not in step["subqueries"][0]["results"][0]  # the trace's brief view


def test_hop_without_a_model_passes_the_lists_through(deps: GraphDeps) -> None:
    state = _planned(deps, "What causes the tides?")
    state = _run(state, nodes.retrieve(state, deps))
    update = nodes.hop(state, deps)
    assert update["lists"] == state["lists"]
    assert update["trace"][0]["method"] == "none" and update["trace"][0]["skipped"] == "no TreeHop model"


def test_hop_adds_the_passages_of_the_treehop_tree(searcher: HybridSearcher, deps: GraphDeps) -> None:
    from hopmem.agents.multihop import TreeHopRetriever
    from hopmem.agents.treehop_model import load_selected_treehop

    assert searcher.embedder is not None
    model, note = load_selected_treehop(None, embedder=searcher.embedder.name, dim=searcher.embedder.dim)
    hopper = TreeHopRetriever(searcher.store, searcher.index, model, top_n=3, hops=2, choice=note)
    deps = replace(deps, hopper=hopper)
    state = _planned(deps, "What causes the tides?")
    state = _run(state, nodes.retrieve(state, deps))
    update = nodes.hop(state, deps)
    assert "treehop:q1" in update["lists"]
    assert all(set(p) == {"id", "score"} for p in update["lists"]["treehop:q1"])
    (tree,) = update["trace"][0]["trees"]
    assert tree["n"] == 1 and update["lists"]["treehop:q1"]
    assert update["trace"][0]["model"] == note and note.split(" ")[0] in ("trained", "untrained")
    assert update["lists"]["q1"] == state["lists"]["q1"]  # the searches' lists are kept as they were


def test_fuse_then_rerank_without_a_reranker_keeps_the_fused_order(deps: GraphDeps) -> None:
    state = _planned(deps, "Who was born first, Augustin-Jean Fresnel or Karl von Frisch?")
    for node in (nodes.retrieve, nodes.hop):
        state = _run(state, node(state, deps))
    fused = nodes.fuse(state, deps)
    candidates = fused["candidates"]
    assert [p["score"] for p in candidates] == sorted((p["score"] for p in candidates), reverse=True)
    assert set(candidates[0]["ranks"]) <= {"q0", "q1", "q2"} and candidates[0]["trust"] is None  # no trust model
    step = fused["trace"][0]
    assert step["fusion"] == "rsf" and step["lists"] == ["q0", "q1", "q2"] and step["weights"] == {}
    state = _run(state, fused)
    ranked = nodes.rerank(state, deps)
    assert ranked["ranking"] == [p["id"] for p in candidates]
    assert ranked["evidence"] == candidates[:2]
    assert ranked["trace"][0]["reranker"] == "none"
    assert nodes.route_after_rerank(_run(state, ranked)) == ("answer" if ranked["sufficient"] else "retrieve")
    assert [s["step"] for s in _run(state, ranked)["trace"]] == ["plan", "retrieve", "hop", "fuse", "rerank"]


def test_answer_without_an_llm_is_extractive_and_cites_its_evidence(deps: GraphDeps) -> None:
    state = _planned(deps, "What causes the tides?")
    for node in (nodes.retrieve, nodes.hop, nodes.fuse, nodes.rerank):
        state = _run(state, node(state, deps))
    update = nodes.answer(state, deps)
    step = update["trace"][0]
    assert step["mode"] == "extractive" and step["warning"] == "no LLM configured: extractive answer"
    assert [c["n"] for c in update["citations"]] == [1, 2]
    assert [c["id"] for c in update["citations"]] == [p["id"] for p in state["evidence"]]
    assert list(update["citations"][0]) == ["n", "id", "title", "text", "score", "cited"]
    assert any(c["cited"] for c in update["citations"]) and step["cited"]
    assert update["history"] == [
        {"role": "user", "content": "What causes the tides?"},
        {"role": "assistant", "content": update["answer"]},
    ]


def test_answer_without_evidence_says_so(deps: GraphDeps) -> None:
    state: AgentState = {"question": "What causes the tides?", "tenant": TENANT, "history": [], "evidence": []}
    update = nodes.answer(state, deps)
    assert update["trace"][0]["mode"] == "no-evidence" and update["citations"] == []
    assert "could not find" in update["answer"]


def test_remember_writes_back_only_what_is_cited_and_only_when_on(deps: GraphDeps) -> None:
    written: list[tuple[str, str, list[int]]] = []

    def remember(question: str, answer: str, cited: list[int]) -> dict[str, Any]:
        written.append((question, answer, cited))
        return {"id": 99, "quarantined": False}

    citations = [
        {"n": 1, "id": 3, "title": "a", "text": "x", "score": 1.0, "cited": True},
        {"n": 2, "id": 4, "title": "b", "text": "y", "score": 0.5, "cited": False},
    ]
    state: AgentState = {"question": "q?", "tenant": TENANT, "answer": "a [1]", "citations": citations}
    step = nodes.remember(state, replace(deps, remember=remember))["trace"][0]
    assert written == [("q?", "a [1]", [3])] and step["id"] == 99
    off = replace(deps, remember=remember, config=AgentConfig(remember_answers=False))
    assert nodes.remember(state, off)["trace"][0]["skipped"] == "write-back is off"
    uncited = {**state, "citations": [{**citations[0], "cited": False}]}
    assert nodes.remember(uncited, replace(deps, remember=remember))["trace"][0]["skipped"] == (
        "the answer cites no memory"
    )
    assert len(written) == 1


def test_the_trace_reducer_appends_and_the_plan_step_starts_over() -> None:
    old = [{"step": "plan"}, {"step": "retrieve"}, {"step": "answer"}]
    assert add_steps(old, [{"step": "remember"}]) == [*old, {"step": "remember"}]
    assert add_steps(old, [{"step": "plan", "mode": "whole"}]) == [{"step": "plan", "mode": "whole"}]
    assert add_steps(None, [{"step": "fuse"}]) == [{"step": "fuse"}]
    assert add_steps(old, []) == old


def test_the_graph_runs_the_nodes_in_order_with_one_trace_per_question(deps: GraphDeps) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from hopmem.agents.graph import build_graph

    graph = build_graph(deps, checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "t"}}
    first = graph.invoke({"question": "What causes the tides?", "tenant": TENANT}, config=thread)
    names = ["plan", "retrieve", "hop", "fuse", "rerank", "answer", "remember"]
    assert [s["step"] for s in first["trace"]] == names
    second = graph.invoke({"question": "And what are spring tides?", "tenant": TENANT}, config=thread)
    assert [s["step"] for s in second["trace"]] == names  # the first question's steps are not carried over
    assert len(second["history"]) == 4


def _passage(i: int, source_class: str = "conversation", text: str = "") -> dict[str, Any]:
    return {"id": i, "score": 1.0 / i, "title": None, "text": text or f"[3 March 2024] Alice: turn {i}",
            "source_class": source_class}  # fmt: skip


def test_keep_floor_puts_the_whole_questions_best_first_in_the_rerankers_order() -> None:
    ranking = [_passage(i) for i in (5, 3, 9, 1, 7)]
    floor = [_passage(i) for i in (1, 2, 3)]  # 2 is missing from the ranking (sub-queries pushed it out)
    assert [p["id"] for p in nodes.keep_floor(ranking, floor)] == [3, 1, 2, 5, 9, 7]
    assert [p["id"] for p in nodes.keep_floor(ranking, [])] == [5, 3, 9, 1, 7]


def test_the_conversation_rule_applies_only_when_every_candidate_is_a_conversation_memory() -> None:
    assert nodes.is_conversation([_passage(1), _passage(2)])
    assert not nodes.is_conversation([_passage(1), _passage(2, source_class="document")])
    assert not nodes.is_conversation([])
    state: AgentState = {"question": "q", "tenant": TENANT, "lists": {"q0": [_passage(4)], "q1": [_passage(5)]}}
    assert [p["id"] for p in nodes.whole_question_list(state)] == [4]  # a split: q0 is the whole question
    state["lists"] = {"q1": [_passage(5)]}
    assert [p["id"] for p in nodes.whole_question_list(state)] == [5]


class _ReadingReranker:
    """A real reranker of the interface that records what it read: longer text scores higher."""

    name = "reading"

    def __init__(self) -> None:
        self.read: list[str] = []
        self.blends: list[float] = []

    def with_blend(self, weight: float) -> _ReadingReranker:
        self.blends.append(weight)
        return self

    def score(self, query: str, docs: list[str]) -> list[float]:
        return [float(len(d)) for d in docs]

    def rank(self, query: str, docs: list[str], top_k: int | None = None) -> list[tuple[int, float]]:
        self.read = list(docs)
        return sorted(enumerate(self.score(query, docs)), key=lambda p: -p[1])


def test_rank_candidates_reads_conversation_memories_without_their_date_and_with_their_blend() -> None:
    reranker = _ReadingReranker()
    candidates = [_passage(1, text="[3 March 2024] Alice: hi"), _passage(2, text="[3 March 2024] Bruno: hello there")]
    ranked = nodes.rank_candidates(reranker, "hello", candidates, {}, blend=0.7, read_date=False)
    assert reranker.read == ["Alice: hi", "Bruno: hello there"] and reranker.blends == [0.7]
    assert [p["id"] for p in ranked] == [2, 1] and ranked[0]["text"].startswith("[3 March 2024]")  # evidence keeps it
    nodes.rank_candidates(reranker, "hello", candidates, {})
    assert reranker.read[0] == "[3 March 2024] Alice: hi" and reranker.blends == [0.7]  # the defaults: as before


class _WordReranker:
    """A blending reranker of the cross-encoder's shape: a passage scores the query words it holds (names too)."""

    name = "words"

    def __init__(self, blend: float = 0.0, log: list[list[str]] | None = None) -> None:
        self.blend = blend
        self.log = [] if log is None else log  # shared with its twins: what each call scored

    def with_blend(self, weight: float) -> _WordReranker:
        return _WordReranker(weight, self.log)

    def score(self, query: str, docs: list[str]) -> list[float]:
        import re

        from hopmem.agents.rerank.cross_encoder import blend_with_order

        self.log.append(list(docs))
        words = set(re.findall(r"\w+", query.lower()))
        raw = [float(sum(w in words for w in re.findall(r"\w+", d.lower()))) for d in docs]
        return blend_with_order(raw, self.blend)

    def rank(self, query: str, docs: list[str], top_k: int | None = None) -> list[tuple[int, float]]:
        from hopmem.agents.rerank.base import rank_by_scores

        return [(i, s) for i, s in rank_by_scores(self.score(query, docs), top_k)]


class _PlainReranker:
    """A reranker without a blend (so without raw scores): longer text scores higher; records each read."""

    name = "plain"

    def __init__(self) -> None:
        self.read: list[list[str]] = []

    def rank(self, query: str, docs: list[str], top_k: int | None = None) -> list[tuple[int, float]]:
        self.read.append(list(docs))
        return sorted(enumerate(float(len(d)) for d in docs), key=lambda p: -p[1])


def test_conversation_order_reads_the_speaker_with_without_or_both() -> None:
    from hopmem.agents.conversation_rerank import conversation_order
    from hopmem.memory.errors import ConfigError

    # name-only match, topic-only match, both, neither: (named, unnamed) scores (1, 0), (1, 1), (2, 1), (0, 0)
    texts = ["Alice: hiking", "Bruno: painting", "Alice: painting", "Bruno: hiking"]
    query = "What painting did Alice make?"

    def order(speaker: str, blend: float | None = 0.0, reranker: Any = None) -> list[int]:
        return [
            i for i, _ in conversation_order(reranker or _WordReranker(), query, texts, blend=blend, speaker=speaker)
        ]

    assert order("keep") == [2, 0, 1, 3]  # the name counts: Alice's unrelated turn beats Bruno's painting
    assert order("drop") == [1, 2, 0, 3]  # names unread: the two painting turns tie and keep their given order
    assert order("mean") == [2, 1, 0, 3]  # 1.5, 1.0, 0.5, 0.0: both reads, averaged
    reranker = _WordReranker()
    order("mean", reranker=reranker)
    assert reranker.log == [texts, ["hiking", "painting", "painting", "hiking"]]  # each read scored once
    assert order("mean", blend=1.0) == [0, 1, 2, 3]  # the blend applies to the mean: weight 1 is the given order
    assert order("mean", blend=None, reranker=_WordReranker(1.0)) == [0, 1, 2, 3]  # None: the reranker's own weight
    unblended = _PlainReranker()  # no raw scores to average: reads the turn once, with its speaker
    assert order("mean", reranker=unblended) == [1, 2, 0, 3] and unblended.read == [texts]
    with pytest.raises(ConfigError, match="conversation_rerank_speaker"):
        order("both")


def test_without_speaker_labels_strips_each_lines_speaker() -> None:
    from hopmem.memory.conversations import without_speaker_labels

    assert without_speaker_labels("Alice: hi there\nBruno: it is 5:30 now") == "hi there\nit is 5:30 now"
    assert without_speaker_labels("no label here") == "no label here"


def test_the_rerank_step_keeps_the_fused_or_the_whole_questions_best_first(deps: GraphDeps) -> None:
    candidates = [_passage(i, text=f"[3 March 2024] Alice: {'word ' * i}") for i in (1, 2, 3, 4, 5, 6)]
    lists = {"q0": [candidates[4], candidates[5]], "q1": candidates[:3], "q2": candidates[3:]}
    state: AgentState = {"question": "word", "tenant": TENANT, "candidates": candidates, "lists": lists, "round": 2}
    reranker = _WordReranker()  # more words score higher: 6, 5, 4, ... with no blend
    fused = replace(
        deps, reranker=reranker, config=AgentConfig(conversation_rerank_floor=2, conversation_rerank_blend=0.0)
    )
    step = nodes.rerank(state, fused)["trace"][0]
    assert [p["id"] for p in step["ranking"]] == [2, 1, 6, 5, 4, 3]  # the fused list's 2 best first, reordered
    assert step["conversation"]["floor_list"] == "fused" and step["conversation"]["speaker"] == "mean"
    whole = replace(fused, config=replace(fused.config, conversation_rerank_floor_list="question"))
    assert nodes.rerank(state, whole)["ranking"] == [6, 5, 4, 3, 2, 1]  # q0's 5 and 6 first
    off = replace(fused, config=replace(fused.config, conversation_rerank_floor=0))
    assert nodes.rerank(state, off)["ranking"] == [6, 5, 4, 3, 2, 1]  # the reranker's order alone
