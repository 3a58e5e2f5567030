"""The memory engine (what ``hopmem.Memory`` opens): add, add_many, update with provenance, filters in every mode,
feedback, export."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hopmem.memory.engine import MemoryEngine
from hopmem.memory.errors import InputError
from hopmem.settings import get_settings
from tests.memory.engines import open_engine

MODES = ("lexical", "dense", "hybrid")


@pytest.fixture()
def memory(tmp_path: Path) -> Iterator[MemoryEngine]:
    with open_engine(get_settings(data_dir=tmp_path / "data"), tenant="t1") as opened:
        yield opened


def _audit(memory: MemoryEngine, action: str) -> list[dict[str, Any]]:
    rows = memory.store.conn.execute(
        "SELECT detail FROM audit_log WHERE tenant = ? AND action = ? ORDER BY id", (memory.tenant, action)
    ).fetchall()
    return [json.loads(r[0]) for r in rows]


def test_add_returns_the_stored_record_with_an_add_event(memory: MemoryEngine) -> None:
    start = time.time()
    record = memory.add(
        "The lighthouse keeper logs the weather at dawn.",
        title="Keeper's log",
        tags=["sea", "work", "sea"],
        metadata={"page": 3, "nested": {"ok": True}},
        agent="scribe",
        source_class="agent",
        importance=0.8,
        source="chat-42",
    )
    assert record.id > 0 and record.tenant == "t1"
    assert (record.title, record.content) == ("Keeper's log", "The lighthouse keeper logs the weather at dawn.")
    assert record.tags == ["sea", "work"]
    assert record.metadata == {"page": 3, "nested": {"ok": True}}
    assert (record.agent_id, record.source_class, record.importance) == ("scribe", "agent", 0.8)
    assert record.content_hash == hashlib.sha256(record.content.encode()).hexdigest()
    assert start <= record.created_at == record.updated_at <= time.time()
    assert record.provenance == [  # the user's handle wrote it for "scribe"
        {
            "at": record.created_at,
            "action": "add",
            "agent": "scribe",
            "via": "user",
            "source_class": "agent",
            "source": "chat-42",
        }
    ]
    assert memory.get(record.id) == record
    stats = memory.stats()
    assert (stats["memories"], stats["vectors"], stats["agents"]) == (1, 1, 1)
    assert stats["by_source_class"] == {"agent": 1}
    assert _audit(memory, "memory.add") == [{"ids": [record.id], "count": 1}]

    # the same content again is the same memory, not a second one
    again = memory.add("The lighthouse keeper logs the weather at dawn.", title="Other title", agent="someone")
    assert again == record
    assert memory.stats()["memories"] == 1
    results = memory.add_many(
        ["A brand new note.", "The lighthouse keeper logs the weather at dawn.", "A brand new note."]
    )
    assert [r.status for r in results] == ["added", "duplicate", "duplicate"]
    assert results[1].id == record.id and results[2].id == results[0].id
    assert memory.stats()["memories"] == 2


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"content": "   "}, "empty"),
        ({"content": "fine", "colour": "red"}, "unknown field"),
        (42, "string or a mapping"),
        ({"content": "fine", "importance": 7}, "between 0 and 1"),
        ({"content": "fine", "source_class": "document"}, "ingest"),
    ],
)
def test_add_many_validates_every_item_before_writing_anything(memory: MemoryEngine, bad: Any, words: str) -> None:
    memory.add_many(["kept one", "kept two"], progress=False)
    before = [(r.id, r.content) for r in memory.export()]
    items: list[Any] = [f"valid item number {i}" for i in range(5)] + [bad] + ["valid item after"]

    with pytest.raises(InputError) as caught:
        memory.add_many(items, batch_size=2, progress=False)  # batches of 2: lazy validation would write 0..3

    message = str(caught.value)
    assert message.startswith("Item 5 of add_many is invalid") and words in message
    assert "\n" not in message
    assert [(r.id, r.content) for r in memory.export()] == before
    assert memory.stats()["vectors"] == 2


def test_add_many_writes_batches_in_order(memory: MemoryEngine) -> None:
    items: list[Any] = [f"note {i} about topic {i * 7}" for i in range(9)]
    items[4] = {"content": "mapped note", "tags": ["x"], "agent": "mapper", "importance": 0.1}
    results = memory.add_many(items, agent="default-agent", source_class="tool", batch_size=2, progress=False)
    assert [r.status for r in results] == ["added"] * 9
    ids = [r.id for r in results]
    assert ids == sorted(ids) and len(set(ids)) == 9
    records = memory.get_many(ids)
    assert [r.content for r in records] == [i if isinstance(i, str) else i["content"] for i in items]
    assert records[4].agent_id == "mapper" and records[4].tags == ["x"] and records[4].importance == 0.1
    assert {r.agent_id for i, r in enumerate(records) if i != 4} == {"default-agent"}
    assert {r.source_class for r in records} == {"tool"}
    assert memory.store.vector_ids("t1") == set(ids)
    assert _audit(memory, "memory.add") == [
        {"ids": ids[i : i + 2], "count": len(ids[i : i + 2])} for i in range(0, 9, 2)
    ]


def test_update_appends_provenance_and_re_embeds(memory: MemoryEngine) -> None:
    volcano = memory.add("Volcano eruptions pour lava down the mountain slopes.", agent="geo")
    memory.add("Magma rises through the crust and erupts as lava from volcanoes.")
    memory.add("Sailing boats need wind to cross the bay.")
    old_hash = volcano.content_hash
    before = {r.id: r.score for r in memory.search("volcano lava eruption", mode="dense", k=3)}
    assert max(before, key=before.__getitem__) == volcano.id

    updated = memory.update(
        volcano.id,
        content="Bake the chocolate cake at 180 degrees for forty minutes.",
        tags=["kitchen"],
        importance=0.9,
        agent="chef",
        reason="wrong note",
    )

    assert updated.id == volcano.id
    assert updated.content == "Bake the chocolate cake at 180 degrees for forty minutes."
    assert (updated.tags, updated.importance) == (["kitchen"], 0.9)
    assert updated.content_hash == hashlib.sha256(updated.content.encode()).hexdigest() != old_hash
    assert updated.created_at == volcano.created_at <= updated.updated_at
    assert len(updated.provenance) == 2
    assert updated.provenance[0] == volcano.provenance[0]
    event = updated.provenance[1]
    assert event == {
        "at": updated.updated_at,
        "action": "update",
        "agent": "chef",
        "via": "user",
        "fields": ["content", "importance", "tags"],
        "reason": "wrong note",
        "previous_hash": old_hash,
    }
    assert memory.get(volcano.id) == updated
    assert _audit(memory, "memory.update") == [{"id": volcano.id, "fields": ["content", "importance", "tags"]}]

    # the stored vector is the new text's, so dense search finds the new content and not the old
    _, vectors = memory.store.vectors_by_ids("t1", [volcano.id])
    np.testing.assert_allclose(vectors[0], memory.embedder.embed([updated.content])[0], atol=1e-5)
    assert memory.search("baking a chocolate cake in the oven", mode="dense", k=1)[0].id == volcano.id
    after = {r.id: r.score for r in memory.search("volcano lava eruption", mode="dense", k=3)}
    assert max(after, key=after.__getitem__) != volcano.id
    assert after[volcano.id] < before[volcano.id] - 0.4
    assert [r.id for r in memory.search("chocolate", mode="lexical")] == [volcano.id]
    assert volcano.id not in [r.id for r in memory.search("eruptions", mode="lexical")]

    # a second update chains on the first
    again = memory.update(volcano.id, title="Cake", agent="chef")
    assert [e["action"] for e in again.provenance] == ["add", "update", "update"]
    assert again.provenance[2]["fields"] == ["title"] and "previous_hash" not in again.provenance[2]
    assert again.content == updated.content


def test_update_of_an_unknown_id_or_with_nothing_to_change_is_refused(memory: MemoryEngine) -> None:
    record = memory.add("A note that stays as it is.")
    with pytest.raises(InputError, match="no memory 9999"):
        memory.update(9999, content="new text")
    with pytest.raises(InputError, match="Nothing to update"):
        memory.update(record.id, agent="someone")
    with pytest.raises(InputError):
        memory.update(record.id, content="")
    with pytest.raises(InputError):
        memory.update(record.id, importance=2.0)
    with pytest.raises(InputError):
        memory.update(record.id, tags=[""])
    assert memory.get(record.id) == record


def test_filters_apply_in_every_search_mode(memory: MemoryEngine) -> None:
    first = memory.add_many(
        [
            {"content": "The lighthouse beam sweeps the harbour.", "agent": "alice", "tags": ["red"]},
            {"content": "A lighthouse stands on the rocky cape.", "agent": "bob", "tags": ["blue", "red"],
             "source_class": "agent"},
            {"content": "Paint the lighthouse door green.", "agent": "alice", "tags": ["green"],
             "source_class": "tool"},
        ],
        progress=False,
    )  # fmt: skip
    time.sleep(0.05)
    second = memory.add_many(
        [
            {"content": "The old lighthouse became a museum.", "source_class": "conversation"},
            {"content": "Lighthouse keepers once lived in the tower.", "agent": "bob", "tags": ["green"],
             "source_class": "external"},
        ],
        progress=False,
    )  # fmt: skip
    m1, m2, m3 = (r.id for r in first)
    m4, m5 = (r.id for r in second)
    t_first = memory.get(m1).created_at
    t_second = memory.get(m4).created_at
    assert t_first < t_second
    cases: list[tuple[dict[str, Any], set[int]]] = [
        ({}, {m1, m2, m3, m4, m5}),
        ({"agent": "alice"}, {m1, m3}),
        ({"tags": ["red", "green"]}, {m1, m2, m3, m5}),
        ({"tags": ["blue"]}, {m2}),
        ({"source_class": "agent"}, {m2}),
        ({"source_class": ["user", "tool"]}, {m1, m3}),
        ({"since": t_second}, {m4, m5}),
        ({"until": t_first}, {m1, m2, m3}),
        ({"since": t_first, "until": t_second}, {m1, m2, m3, m4, m5}),
        ({"agent": "bob", "since": t_second}, {m5}),
        ({"agent": "bob", "tags": ["red"], "source_class": "agent"}, {m2}),
        ({"tags": ["absent"]}, set()),
        ({"until": t_first - 10}, set()),
    ]
    for filters, expected in cases:
        for mode in MODES:
            found = {r.id for r in memory.search("lighthouse", mode=mode, k=50, **filters)}
            assert found == expected, (mode, filters)


def test_feedback_is_stored_and_summarised(memory: MemoryEngine) -> None:
    one = memory.add("The ferry leaves at nine.")
    two = memory.add("The ferry returns at six.")
    assert memory.feedback(one.id, "up", query="when does the ferry leave", agent="asker") > 0
    memory.feedback(one.id, "up")
    memory.feedback(one.id, "down")
    memory.feedback(two.id, "click")

    summary = memory.behaviour.summary("t1", [one.id, two.id, 9999])
    assert summary == {one.id: {"up": 2, "down": 1, "value": 1.0}, two.id: {"click": 1, "value": 0.5}}
    assert memory.stats()["feedback"] == 4
    row = memory.behaviour.conn.execute(
        "SELECT tenant, memory_id, kind, value, query, agent_id FROM feedback ORDER BY id LIMIT 1"
    ).fetchone()
    assert tuple(row) == ("t1", one.id, "up", 1.0, "when does the ferry leave", "asker")
    # feedback lives in its own file, not in the store
    assert memory.config.behaviour_path.is_file()
    tables = {r[0] for r in memory.store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "feedback" not in tables

    with pytest.raises(InputError, match="Unknown feedback"):
        memory.feedback(one.id, "love")
    with pytest.raises(InputError, match="no memory"):
        memory.feedback(9999, "up")
    assert memory.stats()["feedback"] == 4


def test_export_yields_every_memory_in_id_order(memory: MemoryEngine) -> None:
    results = memory.add_many([f"exported note {i}: {'x' * i}" for i in range(23)], batch_size=5, progress=False)
    ids = [r.id for r in results]
    exported = list(memory.export())
    assert [r.id for r in exported] == ids == sorted(ids)
    assert [r.content for r in exported] == [f"exported note {i}: {'x' * i}" for i in range(23)]
    assert [r.id for r in memory.store.export("t1", batch=4)] == ids  # across batch boundaries
    memory.erase(ids[3:20:2])
    assert [r.id for r in memory.export()] == [i for i in ids if i not in ids[3:20:2]]


def test_recent_is_newest_first_and_skips_erased_and_other_tenants(memory: MemoryEngine) -> None:
    ids = [r.id for r in memory.add_many([f"recent note {i}" for i in range(7)], progress=False)]
    assert [r.id for r in memory.recent(3)] == ids[::-1][:3]
    memory.erase([ids[6]])
    assert [r.id for r in memory.recent(3)] == [ids[5], ids[4], ids[3]]
    assert memory.store.recent("someone-else", 5) == []
    assert len(memory.recent(100)) == 6
    with pytest.raises(InputError, match="at least 1"):
        memory.recent(0)
