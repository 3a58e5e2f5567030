"""The hypothetical answer searched beside the question (``hyde``): real SmolLM2 through llama.cpp where it can run.

A scripted model stands in only for what a real backend cannot be made to do on demand: fail, or ramble past the
cut. The store is the bundled sample in a real SQLite file.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hopmem.agents import nodes
from hopmem.agents.config import AgentConfig
from hopmem.agents.deps import GraphDeps
from hopmem.agents.hyde import MAX_GUESS_CHARS, hypothetical_answer, hypothetical_query
from hopmem.agents.llm.base import ChatLLM, Completion, Message
from hopmem.agents.prompts import hypothesis_messages
from hopmem.agents.state import AgentState, add_steps
from hopmem.memory.errors import LLMError
from hopmem.memory.hybrid import HybridSearcher
from tests.agents.conftest import SAMPLE_TENANT

TENANT = SAMPLE_TENANT
QUESTION = "What causes the tides?"


class Counting:
    """A real model that counts its calls (a guess is written once a question, whatever the rounds)."""

    def __init__(self, llm: ChatLLM) -> None:
        self.llm, self.calls = llm, 0
        self.name, self.context_window = llm.name, llm.context_window

    def complete(self, messages: list[Message], **options: Any) -> Completion:
        self.calls += 1
        return self.llm.complete(messages, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.llm, name)


class Scripted:
    """Stands in for a backend that fails or rambles on demand (a real one cannot be made to)."""

    name, context_window = "scripted", 2048

    def __init__(self, reply: str | None) -> None:
        self.reply = reply

    def complete(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0, **_: Any) -> Completion:
        if self.reply is None:
            raise LLMError("The model server did not answer; start it or set llm_backend = 'none'.")
        return Completion(self.reply, self.name)


def _run(state: AgentState, update: AgentState) -> AgentState:
    merged: dict[str, Any] = {**state, **update}
    merged["trace"] = add_steps(state.get("trace"), list(update.get("trace") or []))
    return merged


def _retrieved(deps: GraphDeps, question: str = QUESTION) -> AgentState:
    state: AgentState = {"question": question, "tenant": TENANT, "history": []}
    state = _run(state, nodes.plan(state, deps))
    return _run(state, nodes.retrieve(state, deps))


def test_hyde_is_off_by_default_and_adds_nothing(searcher: HybridSearcher, smollm2: ChatLLM) -> None:
    assert AgentConfig().hyde is False
    state = _retrieved(GraphDeps(searcher, llm=smollm2, config=AgentConfig(top_k=2)))
    assert "hyde" not in state["lists"] and "hyde" not in state["trace"][-1]
    assert state["hyde_query"] == ""


def test_the_guess_is_searched_once_a_question_and_fused(searcher: HybridSearcher, smollm2: ChatLLM) -> None:
    llm = Counting(smollm2)
    deps = GraphDeps(searcher, llm=llm, config=AgentConfig(top_k=2, hyde=True))  # type: ignore[arg-type]
    state = _retrieved(deps)
    query = state["hyde_query"]
    assert llm.calls == 1
    assert query.startswith(QUESTION + " ") and len(query) > len(QUESTION) + 10
    assert "\n" not in query and len(query) <= len(QUESTION) + 1 + MAX_GUESS_CHARS
    step = state["trace"][-1]
    assert step["hyde"]["query"] == query and step["hyde"]["ms"] > 0
    assert [p["id"] for p in state["lists"]["hyde"]] == [r["id"] for r in step["hyde"]["results"]]
    assert state["lists"]["hyde"] == nodes.as_passages(searcher.search(TENANT, query, k=10))
    # a second round searches the same guess deeper, without asking again
    again = _run(state, nodes.retrieve(state, deps))
    assert llm.calls == 1 and again["hyde_query"] == query and again["trace"][-1]["hyde"]["ms"] is None
    fused = nodes.fuse(_run(state, nodes.hop(state, deps)), deps)
    assert "hyde" in fused["trace"][0]["lists"]
    # a new question writes a new guess
    plan = nodes.plan({**again, "question": "Who painted the Mona Lisa?"}, deps)
    assert plan["hyde_query"] == ""


def test_without_an_llm_hyde_is_skipped_and_said(searcher: HybridSearcher) -> None:
    state = _retrieved(GraphDeps(searcher, config=AgentConfig(top_k=2, hyde=True)))
    assert "hyde" not in state["lists"] and state["trace"][-1]["hyde"] == {"skipped": "no LLM configured"}


def test_a_failing_llm_costs_the_list_not_the_question(searcher: HybridSearcher) -> None:
    deps = GraphDeps(searcher, llm=Scripted(None), config=AgentConfig(top_k=2, hyde=True))  # type: ignore[arg-type]
    state = _retrieved(deps)
    assert sorted(state["lists"]) == ["q1"] and state["lists"]["q1"]
    step = state["trace"][-1]
    assert "did not answer" in step["hyde"]["skipped"] and "searched without it" in step["warning"]
    empty = replace(deps, llm=Scripted("   \n "))
    assert "wrote no hypothetical answer" in _retrieved(empty)["trace"][-1]["hyde"]["skipped"]


def test_a_rambling_guess_is_one_line_cut_at_a_word() -> None:
    guess = hypothetical_answer(Scripted("The moon\n\n pulls " + "water " * 400), QUESTION, max_tokens=60)  # type: ignore[arg-type]
    assert guess.startswith("The moon pulls water") and "\n" not in guess
    assert len(guess) <= MAX_GUESS_CHARS and guess.endswith("water")
    query, warning = hypothetical_query(Scripted("Gravity."), QUESTION, max_tokens=60)  # type: ignore[arg-type]
    assert (query, warning) == (f"{QUESTION} Gravity.", None)


def test_the_prompt_asks_for_a_short_answer_and_carries_the_question() -> None:
    messages = hypothesis_messages(QUESTION)
    assert [m["role"] for m in messages] == ["system", "user"] and messages[-1]["content"].endswith(QUESTION)
