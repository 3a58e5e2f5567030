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
    assert [s["step"] for s in answer.trace] == ["retrieve", "hop", "answer"]
    assert _step(answer, "hop")["method"] == "treehop"
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
