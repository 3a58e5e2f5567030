"""The LangGraph agent end to end over a real store, with real and unreachable LLM backends."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hopmem import Agent, Memory
from hopmem.agents.llm.openai_compat import OpenAICompatLLM
from hopmem.memory.errors import InputError
from hopmem.settings import get_settings


@pytest.fixture()
def memory(tmp_path: Path, sample_dir: Path) -> Memory:
    memory = Memory(get_settings(data_dir=tmp_path))
    report = memory.ingest([sample_dir], progress=False)
    assert report.added == 4
    return memory


def _step(answer: object, name: str) -> dict:
    return next(s for s in answer.trace if s["step"] == name)  # type: ignore[attr-defined]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_extractive_agent_answers_with_a_citation_of_the_right_document(memory: Memory) -> None:
    agent = Agent(memory, settings=memory.settings.model_copy(update={"llm_backend": "none"}))
    answer = agent.ask("What did Augustin-Jean Fresnel invent for lighthouses?")
    assert [s["step"] for s in answer.trace] == ["plan", "retrieve", "hop", "fuse", "rerank", "answer", "remember"]
    assert _step(answer, "hop")["method"] == "treehop"
    assert _step(answer, "plan")["source"] == "rules"  # the default planner
    assert all(s["ms"] >= 0 for s in answer.trace)
    cited = [c for c in answer.citations if c["cited"]]
    assert cited and "lighthouse" in cited[0]["title"].lower()
    assert _step(answer, "answer")["mode"] == "extractive"
    stored = {r.id for r in memory.store.get(memory.tenant, [c["id"] for c in answer.citations])}
    assert stored == {c["id"] for c in answer.citations}


def test_llamacpp_agent_answers_from_evidence(memory: Memory) -> None:
    agent = Agent(memory)
    answer = agent.ask("How do honeybees tell other bees where flowers are?")
    assert _step(answer, "answer")["mode"] == "llm"
    assert _step(answer, "answer")["usage"]["completion_tokens"] > 0
    assert answer.answer.strip()
    assert answer.citations[0]["title"] == "How honeybees share directions"
    agent.close()


def test_unreachable_llm_server_falls_back_to_extractive_with_a_warning(memory: Memory) -> None:
    # A real HTTP client against a port where nothing listens: the server is genuinely unreachable.
    llm = OpenAICompatLLM("m", base_url=f"http://127.0.0.1:{_closed_port()}/v1", timeout_s=2, retries=0)
    agent = Agent(memory, llm=llm)
    answer = agent.ask("What causes the tides?")
    step = _step(answer, "answer")
    assert step["mode"] == "extractive"
    assert "unreachable" in step["warning"]
    assert any(c["cited"] for c in answer.citations)


@pytest.mark.parametrize("question", ["", "   ", "x" * 1_000_000])
def test_bad_questions_are_refused(memory: Memory, question: str) -> None:
    agent = Agent(memory, settings=memory.settings.model_copy(update={"llm_backend": "none"}))
    with pytest.raises(InputError):
        agent.ask(question)


def test_conversation_is_checkpointed_and_resumable(memory: Memory) -> None:
    settings = memory.settings.model_copy(update={"llm_backend": "none"})
    agent = Agent(memory, settings=settings)
    first = agent.chat("What causes the tides?", thread_id="t1")
    agent.chat("And what are spring tides?", thread_id="t1")
    agent.close()
    again = Agent(Memory(settings), settings=settings)
    history = again.history("t1")
    assert [t["role"] for t in history] == ["user", "assistant", "user", "assistant"]
    assert history[1]["content"] == first.answer
    assert again.history("other-thread") == []
    again.close()


def test_the_answer_is_remembered_as_an_agent_memory_derived_from_what_it_cites(memory: Memory) -> None:
    settings = memory.settings.model_copy(update={"llm_backend": "none"})
    before = memory.stats()["memories"]
    answer = Agent(memory, settings=settings).ask("What causes the tides?")
    step = _step(answer, "remember")
    cited = [c["id"] for c in answer.citations if c["cited"]]
    assert step["derived_from"] == cited and not step["quarantined"]
    record = memory.get(step["id"])
    assert record.source_class == "agent" and record.agent_id == settings.agent_name
    assert "What causes the tides?" in record.content and answer.answer in record.content
    assert memory.stats()["memories"] == before + 1
    # Its trust can be no higher than that of what it was derived from, and it is searchable as agent memory.
    assert record.id in [r.id for r in memory.search("tides answer", source_class="agent")]


def test_write_back_can_be_switched_off(memory: Memory) -> None:
    settings = memory.settings.model_copy(update={"llm_backend": "none", "remember_answers": False})
    before = memory.stats()["memories"]
    answer = Agent(memory, settings=settings).ask("What causes the tides?")
    assert _step(answer, "remember")["skipped"] == "write-back is off"
    assert memory.stats()["memories"] == before


class _ReverseReranker:
    """A real (if silly) reranker implementing the interface: it prefers the candidates fusion liked least."""

    name = "reverse"

    def score(self, query: str, docs: list[str]) -> list[float]:
        return [float(i) for i in range(len(docs))]

    def rank(self, query: str, docs: list[str], top_k: int | None = None) -> list[tuple[int, float]]:
        order = sorted(enumerate(self.score(query, docs)), key=lambda p: -p[1])
        return order[:top_k] if top_k else order


def test_the_reranker_decides_the_evidence_order(memory: Memory) -> None:
    from hopmem.agents.config import AgentConfig
    from hopmem.agents.deps import GraphDeps
    from hopmem.agents.graph import build_graph

    config = AgentConfig(top_k=2, remember_answers=False)
    graph = build_graph(GraphDeps(memory.searcher, config=config, reranker=_ReverseReranker()))
    state = graph.invoke({"question": "What causes the tides?", "tenant": memory.tenant, "history": []})
    fused = [p["id"] for p in next(s for s in state["trace"] if s["step"] == "fuse")["results"]]
    assert len(fused) > 2
    assert [e["id"] for e in state["evidence"]] == fused[::-1][:2]


def test_search_more_is_bounded_and_driven_by_uncovered_sub_queries() -> None:
    from hopmem.agents.config import AgentConfig
    from hopmem.agents.nodes import check_sufficient

    lists = {"q1": [{"id": 1, "score": 1.0}] * 10, "q2": [{"id": 2, "score": 1.0}] * 10}
    state = {"round": 1, "queries": ["a", "b"], "lists": lists}
    config = AgentConfig(top_k=3, retrieve_k=10, max_search_rounds=2)
    assert check_sufficient(state, [{"id": 1}], config)[0] is False  # sub-query 2 has no evidence: search deeper
    assert check_sufficient(state, [{"id": 1}, {"id": 2}], config)[0] is True
    assert check_sufficient({**state, "round": 2}, [{"id": 1}], config)[0] is True  # the hard bound
    short = {"q1": [{"id": 1, "score": 1.0}], "q2": [{"id": 2, "score": 1.0}]}
    assert check_sufficient({**state, "lists": short}, [{"id": 1}], config)[0] is True  # the memory is exhausted


def test_stream_reports_steps_in_order_then_tokens_then_the_answer(memory: Memory) -> None:
    agent = Agent(memory)
    events = list(agent.stream("How do honeybees tell other bees where flowers are?"))
    agent.close()
    steps = [e["step"]["step"] for e in events if e["type"] == "step"]
    assert steps == ["plan", "retrieve", "hop", "fuse", "rerank", "answer", "remember"]
    tokens = [e["text"] for e in events if e["type"] == "token"]
    assert len(tokens) > 1
    final = events[-1]
    assert final["type"] == "answer"
    assert _step(final["answer"], "answer")["mode"] == "llm" and final["answer"].answer.strip()
    assert "".join(tokens).split()[0] in final["answer"].answer  # the streamed text is the answer's text
    first_token = next(i for i, e in enumerate(events) if e["type"] == "token")
    answer_step = next(i for i, e in enumerate(events) if e["type"] == "step" and e["step"]["step"] == "answer")
    assert first_token < answer_step  # tokens arrive while the answer step runs, before it ends


class _KeywordReranker:
    """A real reranker implementing the interface: the more query words a passage holds, the higher it scores."""

    name = "keyword"

    def score(self, query: str, docs: list[str]) -> list[float]:
        words = set(query.lower().split())
        return [float(len(words & set(d.lower().split()))) for d in docs]

    def rank(self, query: str, docs: list[str], top_k: int | None = None) -> list[tuple[int, float]]:
        order = sorted(enumerate(self.score(query, docs)), key=lambda p: -p[1])
        return order[:top_k] if top_k else order


def test_reranker_scores_are_weighed_by_trust_so_distrusted_text_cannot_climb_back(memory: Memory) -> None:
    from hopmem.agents.nodes import rank_candidates

    candidates = [
        {"id": 1, "title": "", "text": "tides moon gravity ocean", "score": 0.5, "trust": 0.05},
        {"id": 2, "title": "", "text": "tides moon", "score": 0.4, "trust": 0.95},
    ]
    step: dict = {}
    plain = rank_candidates(_KeywordReranker(), "tides moon gravity ocean", candidates, step)
    assert [c["id"] for c in plain] == [1, 2]  # without trust, the reranker prefers the distrusted passage
    weighed = rank_candidates(
        _KeywordReranker(), "tides moon gravity ocean", candidates, step, searcher=memory.searcher
    )
    assert [c["id"] for c in weighed] == [2, 1]
    assert weighed[1]["rerank_score"] == 4.0 and weighed[1]["score"] < weighed[1]["rerank_score"]


def test_an_empty_memory_gets_a_clear_answer_and_nothing_is_remembered(tmp_path: Path) -> None:
    empty = Memory(get_settings(data_dir=tmp_path / "empty", llm_backend="none"))
    answer = Agent(empty).ask("What causes the tides?")
    assert _step(answer, "answer")["mode"] == "no-evidence"
    assert "could not find" in answer.answer and answer.citations == []
    assert _step(answer, "remember")["skipped"] == "the answer cites no memory"
    assert empty.stats()["memories"] == 0


def test_a_split_question_is_still_searched_whole_beside_its_sub_queries(memory: Memory) -> None:
    settings = memory.settings.model_copy(update={"llm_backend": "none", "remember_answers": False})
    answer = Agent(memory, settings=settings).ask("Who was born first, Augustin-Jean Fresnel or Karl von Frisch?")
    plan = _step(answer, "plan")
    assert plan["mode"] == "parallel" and len(plan["queries"]) == 2
    subs = _step(answer, "retrieve")["subqueries"]
    assert [s["n"] for s in subs] == [0, 1, 2] and subs[0]["query"] == plan["standalone"]
    fused = _step(answer, "fuse")
    assert fused["lists"][:3] == ["q0", "q1", "q2"]
    # The hop trees enter the fusion with a lower weight than retrieval, and only with the passages they added.
    assert all(w == settings.treehop_weight for w in fused["weights"].values())
    assert {name for name in fused["weights"]} <= {"treehop:q1", "treehop:q2"}


def test_a_reasoning_reranker_leaves_its_choices_and_reasoning_in_the_trace(memory: Memory) -> None:
    """The setwise reranker with a scripted judge standing in for the model (it names the passage mentioning the
    moon): its selections, by memory id, and their reasoning are in the rerank step for the UI."""
    from hopmem.agents.config import AgentConfig
    from hopmem.agents.deps import GraphDeps
    from hopmem.agents.graph import build_graph
    from hopmem.agents.rerank.setwise import SetwiseLLMReranker
    from tests.agents.test_rerank_setwise import ScriptedJudge

    judge = ScriptedJudge(["<think>the moon pulls the sea</think><answer>[2]</answer>"] * 20)
    reranker = SetwiseLLMReranker(llm=judge, set_size=3, depth=2, max_tokens=32)
    config = AgentConfig(top_k=2, remember_answers=False)
    graph = build_graph(GraphDeps(memory.searcher, config=config, reranker=reranker))
    state = graph.invoke({"question": "What causes the tides?", "tenant": memory.tenant, "history": []})
    step = next(s for s in state["trace"] if s["step"] == "rerank")
    candidates = {p["id"] for p in next(s for s in state["trace"] if s["step"] == "fuse")["results"]}
    assert step["reranker"] == reranker.name and step["reasoning"]
    for entry in step["reasoning"]:
        assert entry["reasoning"] == "the moon pulls the sea" and not entry["fallback"]
        assert entry["chosen"] == entry["window"][1] and set(entry["window"]) <= candidates
    first_place = [e["chosen"] for e in step["reasoning"] if e["place"] == 1]
    assert state["evidence"][0]["id"] == first_place[-1]  # the last selection for place 1 is the winner


def test_a_chained_question_searches_again_with_the_first_searchs_answer(
    memory: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No LLM here, so the bridge answer is the extractive one; the point is the chain's plumbing: the second
    search holds that answer (never a literal ``{1}``), and the question, which is also the chain's first step, is
    searched once per round."""
    settings = memory.settings.model_copy(
        update={"llm_backend": "none", "remember_answers": False, "planner": "rules", "max_search_rounds": 1}
    )
    agent = Agent(memory, settings=settings)
    searched: list[str] = []
    search = memory.searcher.search

    def counting(tenant: str, query: str, **kwargs: object) -> object:
        searched.append(query)
        return search(tenant, query, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(memory.searcher, "search", counting)
    question = "What did Augustin-Jean Fresnel invent for lighthouses?"
    answer = agent.ask(question)
    plan = _step(answer, "plan")
    assert plan["mode"] == "sequential" and plan["queries"] == [question, "{1} " + question]
    subs = _step(answer, "retrieve")["subqueries"]
    assert [s["n"] for s in subs] == [0, 1, 2]
    bridge = subs[1]["bridge_answer"]
    assert bridge and "{" not in subs[2]["query"]
    assert subs[2]["query"] == f"{bridge} {question}"
    assert searched == [question, f"{bridge} {question}"]
    cited = [c for c in answer.citations if c["cited"]]
    assert cited and "lighthouse" in cited[0]["title"].lower()


@pytest.mark.parametrize("bridge", ["extractive", "llm"])
def test_the_bridge_setting_decides_whether_the_chain_calls_the_llm(
    memory: Memory, smollm2: object, bridge: str
) -> None:
    settings = memory.settings.model_copy(
        update={"remember_answers": False, "planner": "rules", "max_search_rounds": 1, "bridge": bridge}
    )
    answer = Agent(memory, settings=settings, llm=smollm2).ask(  # type: ignore[arg-type]
        "What did Augustin-Jean Fresnel invent for lighthouses?"
    )
    step = _step(answer, "retrieve")
    assert step["subqueries"][1]["bridge_by"] == bridge and step["subqueries"][1]["bridge_answer"]
    kinds = [c["kind"] for c in step.get("llm_calls", [])]
    assert kinds == ([] if bridge == "extractive" else ["json"])
    (call,) = _step(answer, "answer")["llm_calls"]  # the answer is generated either way, and measured
    assert call["kind"] == "complete" and call["prompt_tokens"] > 0 and call["completion_tokens"] > 0


def test_the_chain_threshold_setting_reaches_the_agent(memory: Memory) -> None:
    question = "What did Augustin-Jean Fresnel invent for lighthouses?"  # five content words
    for words, mode in ((6, "whole"), (5, "sequential")):
        settings = memory.settings.model_copy(
            update={"llm_backend": "none", "remember_answers": False, "chain_min_words": words}
        )
        assert _step(Agent(memory, settings=settings).ask(question), "plan")["mode"] == mode


def test_hyde_runs_through_the_graph_and_the_trace_says_what_was_searched(memory: Memory) -> None:
    settings = memory.settings.model_copy(update={"hyde": True, "remember_answers": False})
    agent = Agent(memory, settings=settings)  # SmolLM2 on llama.cpp writes the guess and the answer
    answer = agent.ask("How do honeybees tell other bees where flowers are?")
    retrieve, fuse = _step(answer, "retrieve"), _step(answer, "fuse")
    assert retrieve["hyde"]["query"].startswith("How do honeybees tell other bees where flowers are? ")
    assert "hyde" in fuse["lists"] and retrieve["llm_calls"]  # the guess is an LLM call of the retrieve step
    assert answer.citations[0]["title"] == "How honeybees share directions"
    from hopmem.trace_view import Trace
    from hopmem.ui.render import reasoning_markdown

    assert "hyde (the LLM's guess searched)" in reasoning_markdown(answer.trace)  # the UI's trace panel
    assert "with the LLM's guess at the answer (hyde)" in Trace(answer.trace)._repr_html_()  # the notebook's view
    agent.close()
