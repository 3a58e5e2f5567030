"""Quarantined memories are absent from every read path (search in all modes and filters, get, export, stats, the
exact and Qdrant vector indexes, the agent's evidence), listed for review, present again after approval, and gone
for good after rejection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hopmem import Agent, Memory
from hopmem.memory.engine import MemoryEngine
from hopmem.memory.errors import InputError
from hopmem.memory.vectors.registry import open_index
from hopmem.settings import Settings, get_settings
from tests.memory.engines import open_engine

HELD = "The Bell Rock lighthouse keeper rowed ashore with a secret signal code every Tuesday."
VISIBLE = "The Bell Rock lighthouse stands on a reef in the North Sea off Scotland."
QUERY = "Bell Rock lighthouse keeper secret signal code"
MODES = ("lexical", "dense", "hybrid")


@pytest.fixture(params=["exact", "qdrant"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    # A threshold above the prior (0.67) holds every write of a new agent: the simplest way to quarantine one.
    return get_settings(
        data_dir=tmp_path / "data",
        trust_threshold=0.7,
        vector_backend=request.param,
        qdrant_location=":memory:",  # each MemoryEngine's own Qdrant, reconciled from SQLite like any other process's
        llm_backend="none",
    )


@pytest.fixture()
def user(settings: Settings) -> Iterator[MemoryEngine]:
    with open_engine(settings, tenant="t") as opened:
        opened.add(VISIBLE, tags=["sea"])
        yield opened


def _held(settings: Settings, user: MemoryEngine) -> int:
    with open_engine(settings, tenant="t", agent="newcomer") as agent:
        record = agent.add(HELD, title="keeper", tags=["sea"], source_class="agent")
    assert record.quarantined
    return record.id


def _visible_everywhere(settings: Settings, user: MemoryEngine, mid: int, present: bool) -> None:
    for mode in MODES:
        for filters in ({}, {"tags": ["sea"]}, {"agent": "newcomer"}, {"source_class": "agent"}):
            ids = [r.id for r in user.search(QUERY, mode=mode, k=10, **filters)]  # type: ignore[arg-type]
            assert (mid in ids) == present, (mode, filters)
    assert (mid in {r.id for r in user.export()}) == present
    assert (mid in {r.id for r in user.get_many([mid])}) == present
    if present:
        assert user.get(mid).content == HELD
    else:
        with pytest.raises(InputError, match=f"no memory {mid}"):
            user.get(mid)
    assert (mid in user.index.ids("t")) == present
    assert (mid in user.store.vector_ids("t")) == present
    stats = user.stats()
    assert stats["memories"] == (2 if present else 1)
    assert stats["vectors"] == (2 if present else 1)
    assert stats["quarantined"] == (0 if present else 1)
    assert stats["by_source_class"] == ({"user": 1, "agent": 1} if present else {"user": 1})
    vector = user.embedder.embed([HELD])[0]
    assert (mid in [h.memory_id for h in user.index.search("t", vector, 5)]) == present
    # Write-back off: this checks what the agent reads (its own answer would be one more held write of a new agent).
    # The agent reads through the SDK's facade over the same file.
    with Memory(settings, tenant="t") as facade:
        agent = Agent(facade, settings=settings.model_copy(update={"remember_answers": False}))
        answer = agent.ask("What did the Bell Rock keeper do every Tuesday?")
    assert (mid in [c["id"] for c in answer.citations]) == present


def test_a_quarantined_memory_is_invisible_until_approved(settings: Settings, user: MemoryEngine) -> None:
    mid = _held(settings, user)
    _visible_everywhere(settings, user, mid, present=False)
    with pytest.raises(InputError):
        user.feedback(mid, "up")
    with pytest.raises(InputError):
        user.update(mid, content="changed")
    (entry,) = user.quarantine()
    assert (entry["id"], entry["agent"], entry["content"]) == (mid, "newcomer", HELD)
    assert "below 0.70" in entry["reason"]

    approved = user.approve(mid, note="checked the logbook")
    assert approved == [mid] and user.quarantine() == []
    _visible_everywhere(settings, user, mid, present=True)
    record = user.get(mid)
    assert record.provenance[-1]["action"] == "approve" and record.provenance[-1]["reason"] == "checked the logbook"
    assert [e["kind"] for e in user.trust_history("newcomer")] == ["approved"]
    # Reopening the store (a fresh index reconciled with SQLite) sees it too.
    user.close()
    with open_engine(settings, tenant="t") as reopened:
        assert mid in reopened.index.ids("t")
        assert mid in [r.id for r in reopened.search(QUERY, mode="dense", k=5)]


def test_rejection_erases_the_memory_and_costs_the_writer(settings: Settings, user: MemoryEngine) -> None:
    mid = _held(settings, user)
    report = user.reject([mid])
    assert report.ids == [mid] and report.memories == 1
    assert user.quarantine() == [] and mid not in user.store.contents_of("t")
    assert user.store.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
    assert [e["kind"] for e in user.trust_history("newcomer")] == ["rejected"]
    with pytest.raises(InputError, match="not in quarantine"):
        user.approve(mid)


def test_only_the_user_reviews_the_quarantine(settings: Settings, user: MemoryEngine) -> None:
    mid = _held(settings, user)
    with open_engine(settings, tenant="t", agent="newcomer") as agent:
        with pytest.raises(InputError, match="Only the user can approve"):
            agent.approve(mid)
        with pytest.raises(InputError, match="Only the user can reject"):
            agent.reject(mid)
    assert [e["id"] for e in user.quarantine()] == [mid]


def test_erasing_by_filter_reaches_quarantined_memories(settings: Settings, user: MemoryEngine) -> None:
    mid = _held(settings, user)
    report = user.erase(agent="newcomer")
    assert report.ids == [mid]
    assert user.quarantine() == [] and mid not in user.store.contents_of("t")


def test_quarantine_is_per_tenant(settings: Settings, user: MemoryEngine) -> None:
    mid = _held(settings, user)
    with open_engine(settings, tenant="other") as other:
        assert other.quarantine() == []
        with pytest.raises(InputError, match="not in quarantine"):
            other.approve(mid)


def test_a_derived_index_rebuilt_from_sqlite_leaves_quarantined_vectors_out(
    settings: Settings, user: MemoryEngine
) -> None:
    mid = _held(settings, user)
    assert user.reindex() == 1
    assert mid not in user.index.ids("t")
    if settings.vector_backend == "exact":
        fresh = open_index(user.store, "exact")
        assert mid not in fresh.ids("t")


def test_a_held_memory_changed_in_the_store_keeps_its_vector_out_of_the_indexes(
    settings: Settings, user: MemoryEngine
) -> None:
    mid = _held(settings, user)
    text = HELD.replace("Tuesday", "Thursday")
    vector = user.embedder.embed([text])[0]
    changed = user.store.update_memory(
        "t", mid, {"content": text}, vector, embedder=(user.embedder.name, user.embedder.dim), agent_id=None
    )
    assert changed.quarantined and changed.content == text
    assert mid not in user.store.vector_ids("t") and mid not in user.index.ids("t")
    user.approve(mid)  # approval releases the changed text's vector, not the old one
    assert mid in user.index.ids("t")
    assert [h.memory_id for h in user.index.search("t", vector, 1)] == [mid]
