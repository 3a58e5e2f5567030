"""``Agent.aask`` and ``Agent.astream``: the same runs as ``ask`` and ``stream``, for async code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from hopmem import Agent, InputError, Memory
from hopmem.settings import get_settings

QUESTION = "How do honeybees share directions?"


def _agent(root: Path, sample_dir: Path, *, remember: bool) -> Agent:
    settings = get_settings(data_dir=root / "data", llm_backend="none", reranker="none", remember_answers=remember)
    memory = Memory(settings)
    memory.ingest([sample_dir], progress=False)
    return Agent(memory, settings=settings)


@pytest.fixture()
def agent(tmp_path: Path, sample_dir: Path) -> Iterator[Agent]:
    """Write-back off, so that every run over the same memory gives the same answer."""
    agent = _agent(tmp_path, sample_dir, remember=False)
    yield agent
    agent.close()


@pytest.fixture()
def remembering(tmp_path: Path, sample_dir: Path) -> Iterator[Agent]:
    agent = _agent(tmp_path, sample_dir, remember=True)
    yield agent
    agent.close()


def test_aask_answers_as_ask_does_without_blocking_the_loop(agent: Agent) -> None:
    async def run() -> tuple[object, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        task = asyncio.create_task(ticker())
        answer = await agent.aask(QUESTION)
        task.cancel()
        return answer, ticks

    answer, ticks = asyncio.run(run())
    expected = agent.ask(QUESTION)
    assert answer.answer == expected.answer  # type: ignore[attr-defined]
    assert [c["id"] for c in answer.citations] == [c["id"] for c in expected.citations]  # type: ignore[attr-defined]
    assert ticks > 0  # the loop ran other work while the agent answered


def test_astream_yields_the_steps_then_the_answer(agent: Agent) -> None:
    async def run() -> list[dict[str, object]]:
        return [event async for event in agent.astream(QUESTION)]

    events = asyncio.run(run())
    steps = [e["step"]["step"] for e in events if e["type"] == "step"]  # type: ignore[index]
    assert steps[:2] == ["plan", "retrieve"] and steps[-1] == "remember"
    assert events[-1]["type"] == "answer" and events[-1]["answer"].answer == agent.ask(QUESTION).answer  # type: ignore[union-attr]


def test_leaving_astream_early_stops_the_run_before_the_write_back(remembering: Agent) -> None:
    agent = remembering
    assert agent.ask(QUESTION).trace[-1].get("id")  # a whole run remembers its answer
    before = agent.memory.stats()["memories"]

    async def run() -> list[str]:
        seen = []
        async for event in agent.astream(QUESTION):
            seen.append(event["step"]["step"])  # type: ignore[index]
            if event["step"]["step"] == "retrieve":  # type: ignore[index]
                break
        await asyncio.sleep(0.5)  # the worker reaches its next event and stops
        return seen

    assert asyncio.run(run()) == ["plan", "retrieve"]
    assert agent.memory.stats()["memories"] == before  # the answer was never remembered


def test_a_bad_question_raises_in_the_caller(agent: Agent) -> None:
    async def run(agent: Agent) -> None:
        async for _ in agent.astream("   "):
            pass

    with pytest.raises(InputError, match="empty"):
        asyncio.run(run(agent))
