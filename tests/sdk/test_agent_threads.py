"""``Agent.threads``: a tenant's conversations, most recent first, titled by their first question."""

from __future__ import annotations

from pathlib import Path

from hopmem import Agent, Memory
from hopmem.settings import get_settings


def test_threads_lists_this_tenants_conversations_newest_first(tmp_path: Path, sample_dir: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none", treehop_hops=1)
    memory = Memory(settings)
    memory.ingest([sample_dir], progress=False)
    agent = Agent(memory, settings=settings)
    assert agent.threads() == []
    agent.chat("What causes the tides?", thread_id="first")
    agent.chat("And what are spring tides?", thread_id="first")
    list(agent.stream("What is photosynthesis?", thread_id="second"))
    agent.ask("A one-off question is no thread?")
    assert agent.threads() == [
        {"thread_id": "second", "title": "What is photosynthesis?", "turns": 1},
        {"thread_id": "first", "title": "What causes the tides?", "turns": 2},
    ]
    assert [t["thread_id"] for t in agent.threads(limit=1)] == ["second"]
    agent.close()
    other = Agent(Memory(settings, tenant="someone-else"), settings=settings)
    assert other.threads() == []
    other.close()
