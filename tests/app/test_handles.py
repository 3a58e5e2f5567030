"""The handle pool shared by ``hopmem serve`` and its /mcp endpoint: bounded, never closing a handle in use."""

from __future__ import annotations

import threading
from pathlib import Path

from hopmem.app.handles import HandlePool, Identity
from hopmem.settings import get_settings


def _pool(tmp_path: Path, limit: int) -> HandlePool:
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none", reranker="none")
    return HandlePool(settings, limit=limit)


def test_the_least_recently_used_idle_identity_is_closed_beyond_the_limit(tmp_path: Path) -> None:
    pool = _pool(tmp_path, limit=2)
    a, b, c = Identity("t1", "a"), Identity("t1", "b"), Identity("t2", None)
    with pool.memory(a) as memory:
        first_a = memory
        memory.add("alpha note")
    with pool.memory(b):
        pass
    with pool.memory(a) as memory:
        assert memory is first_a  # kept open between requests
    with pool.memory(c):
        pass
    assert len(pool) == 2  # b was the least recently used
    with pool.memory(a) as memory:
        assert memory is first_a
    with pool.memory(b) as memory:  # reopened: a fresh handle over the same store sees the data
        assert [r.record.content for r in memory.search("alpha", k=1, mode="lexical")] == ["alpha note"]
    assert pool.opened == 4
    pool.close()
    assert len(pool) == 0


def test_a_handle_in_use_is_not_closed_when_the_pool_overflows(tmp_path: Path) -> None:
    pool = _pool(tmp_path, limit=1)
    busy, other = Identity("t1", "busy"), Identity("t1", "other")
    inside, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def hold() -> None:
        with pool.memory(busy) as memory:
            inside.set()
            release.wait(10)
            seen.append(memory.add("written while the pool overflowed").id)  # the handle still works

    worker = threading.Thread(target=hold)
    worker.start()
    assert inside.wait(10)
    with pool.memory(other):
        assert len(pool) == 2  # over the limit: the only idle one is this, in use now too
    release.set()
    worker.join(10)
    assert seen and seen[0] > 0
    with pool.memory(Identity("t1", "third")):
        pass
    assert len(pool) == 1  # both idle ones went once nobody held them
    pool.close()


def test_one_identity_gets_one_memory_and_an_agent_over_its_own_memory(tmp_path: Path) -> None:
    pool = _pool(tmp_path, limit=4)
    who = Identity("t1", None)
    with pool.memory(who) as memory, pool.agent(who) as agent:  # a chat does not hold up the memory calls
        assert agent.memory is not memory
        memory.add("The ferry leaves at nine.")
        assert "nine" in agent.ask("When does the ferry leave?").answer
    pool.close()
