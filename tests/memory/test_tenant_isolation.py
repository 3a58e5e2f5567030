"""Tenant isolation: tenant A never reads, changes or erases tenant B's memories, on any path.

B holds the closest matches for A's queries (B's texts are A's queries word for word), so a leak would rank first.
Each check has its positive control: B sees its own data through the same call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hopmem.memory.behaviour import BehaviourStore
from hopmem.memory.engine import MemoryEngine
from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import HybridSearcher
from hopmem.memory.records import DocumentInput, MemoryInput, SearchFilter
from hopmem.memory.store import MemoryStore
from hopmem.memory.vectors.exact import ExactVectorIndex
from hopmem.settings import get_settings
from tests.memory.engines import open_engine

QUERIES = [
    "how often to water a rare blue orchid in the greenhouse",
    "quarterly revenue forecast for the Berlin office",
]
B_TEXTS = [
    "How often to water a rare blue orchid in the greenhouse: every nine days, never on the leaves.",
    "Quarterly revenue forecast for the Berlin office: eleven million euros.",
]
A_TEXTS = [
    "Orchids are flowering plants and some of them grow in greenhouses.",
    "Revenue numbers appear in the annual report of the company.",
    "The cat sleeps on the sofa all afternoon.",
]
TAGS = [["plants"], ["finance"], ["pets"]]
FILTERS: list[dict[str, Any]] = [
    {},
    {"tags": ["plants", "finance"]},
    {"agent": "bot"},
    {"source_class": "user"},
    {"since": 0.0, "until": 4_000_000_000.0},
]
MODES = ("lexical", "dense", "hybrid")


@dataclass
class Tenants:
    a: MemoryEngine
    b: MemoryEngine
    a_ids: list[int]
    b_ids: list[int]


@pytest.fixture()
def tenants(tmp_path: Path) -> Iterator[Tenants]:
    settings = get_settings(data_dir=tmp_path / "data")
    a = open_engine(settings, tenant="A")
    b = open_engine(settings, tenant="B")
    b_ids = [b.add(t, tags=tags, agent="bot").id for t, tags in zip(B_TEXTS, TAGS, strict=False)]
    a_ids = [a.add(t, tags=tags, agent="bot").id for t, tags in zip(A_TEXTS, TAGS, strict=True)]
    b.feedback(b_ids[0], "up", query=QUERIES[0])
    yield Tenants(a, b, a_ids, b_ids)
    a.close()
    b.close()


@pytest.mark.parametrize("mode", MODES)
def test_search_never_returns_another_tenants_memories(tenants: Tenants, mode: str) -> None:
    a, b = tenants.a, tenants.b
    for query, b_id in zip(QUERIES, tenants.b_ids, strict=True):
        for filters in FILTERS:
            found = [r.record for r in a.search(query, mode=mode, k=20, **filters)]
            assert {r.id for r in found} <= set(tenants.a_ids), (query, filters)
            assert all(r.tenant == "A" and r.content not in B_TEXTS for r in found)
            # positive control: B finds its own item first through the same call
            own = b.search(query, mode=mode, k=20, **filters)
            assert own and own[0].id == b_id, (query, filters, [r.id for r in own])
        assert a.search(query, mode=mode, k=20), "A's unfiltered search found nothing of its own"

    # the raw ranked lists the searcher fuses are tenant-bound too
    searcher = HybridSearcher(a.store, a.embedder, index=ExactVectorIndex(a.store))
    for filters in (None, SearchFilter(agent_id="bot"), SearchFilter(tags=("plants",))):
        lists = searcher.ranked_lists("A", QUERIES[0], mode, filters=filters)
        assert lists
        for hits in lists.values():
            assert {h.memory_id for h in hits} <= set(tenants.a_ids)


def test_vector_index_search_by_other_tenants_ids_finds_nothing(tenants: Tenants) -> None:
    store = tenants.a.store
    index = ExactVectorIndex(store)
    vector = tenants.a.embedder.embed([B_TEXTS[0]])[0]
    assert index.search("A", vector, 10, ids=tenants.b_ids) == []
    assert [h.memory_id for h in index.search("A", vector, 10, ids=[*tenants.b_ids, tenants.a_ids[2]])] == [
        tenants.a_ids[2]
    ]
    assert {h.memory_id for h in index.search("A", vector, 10)} == set(tenants.a_ids)
    assert index.search("B", vector, 10, ids=tenants.b_ids)[0].memory_id == tenants.b_ids[0]
    assert index.ids("A") == set(tenants.a_ids)
    assert index.ids("B") == set(tenants.b_ids)
    # store-level reads bound to A
    assert store.filtered_ids("A", SearchFilter(tags=("plants", "finance"))) == tenants.a_ids[:2]
    assert {h.memory_id for h in store.search_lexical("A", QUERIES[1], 10)} == {tenants.a_ids[1]}
    assert store.vector_ids("A") == set(tenants.a_ids)
    ids, _ = store.vectors_by_ids("A", tenants.b_ids)
    assert len(ids) == 0
    ids, _ = store.vectors_after("A", 0)
    assert set(ids.tolist()) == set(tenants.a_ids)


def test_reads_by_id_stats_and_export_stay_in_the_tenant(tenants: Tenants) -> None:
    a, b = tenants.a, tenants.b
    for b_id in tenants.b_ids:
        with pytest.raises(InputError, match="no memory"):
            a.get(b_id)
        assert b.get(b_id).tenant == "B"
    assert a.get_many(tenants.b_ids) == []
    assert [r.id for r in a.get_many([*tenants.b_ids, *tenants.a_ids])] == tenants.a_ids
    assert [r.id for r in b.get_many([*tenants.b_ids, *tenants.a_ids])] == tenants.b_ids
    assert a.store.get("A", tenants.b_ids) == []

    a_stats, b_stats = a.stats(), b.stats()
    assert (a_stats["memories"], a_stats["vectors"], a_stats["agents"], a_stats["feedback"]) == (3, 3, 1, 0)
    assert (b_stats["memories"], b_stats["vectors"], b_stats["agents"], b_stats["feedback"]) == (2, 2, 1, 1)
    assert a_stats["by_source_class"] == {"user": 3}

    assert [r.id for r in a.export()] == tenants.a_ids
    assert [r.id for r in b.export()] == tenants.b_ids
    assert all(r.tenant == "A" for r in a.export())


def test_writes_on_another_tenants_ids_change_nothing(tenants: Tenants) -> None:
    a, b = tenants.a, tenants.b
    target = tenants.b_ids[0]
    before = b.get(target)

    with pytest.raises(InputError):
        a.feedback(target, "down", query="leak?")
    with pytest.raises(InputError):
        a.update(target, content="hijacked by A", reason="attack")
    with pytest.raises(InputError):
        a.update(target, importance=0.9)
    with pytest.raises(InputError):
        a.store.update_memory("A", target, {"importance": 0.1}, None, embedder=None, agent_id=None)

    report = a.erase([target])
    assert (report.memories, report.vectors, report.feedback, report.ids) == (0, 0, 0, [])
    report = a.erase(tags=["plants"])  # A's own plants memory goes; B's plants memory stays
    assert report.ids == [tenants.a_ids[0]]
    row_report, contents = a.store.erase_rows("A", tenants.b_ids, reason="attack")
    assert (row_report.memories, contents) == (0, [])

    after = b.get(target)
    assert after == before
    assert after.content == B_TEXTS[0] and len(after.provenance) == 1
    assert b.behaviour.summary("B", [target]) == {target: {"up": 1, "value": 1.0}}
    assert b.stats()["feedback"] == 1 and a.stats()["feedback"] == 0
    assert [r.id for r in b.search(QUERIES[0], mode="dense", k=1)] == [target]
    assert b.store.vector_ids("B") == set(tenants.b_ids)

    # erasing all of A leaves B whole
    a.erase(everything=True)
    assert a.stats()["memories"] == 0
    assert [r.id for r in b.export()] == tenants.b_ids
    assert b.stats()["feedback"] == 1
    assert ExactVectorIndex(b.store).ids("B") == set(tenants.b_ids)


# ---- calls without a tenant -------------------------------------------------------------------------------------

BAD_TENANTS: list[Any] = [None, "", "  ", 5]
FAKE = ("fake", 16)


def _unit(n: int) -> np.ndarray:
    rows = np.random.default_rng(3).normal(size=(n, FAKE[1])).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _store_calls(store: MemoryStore, tmp_path: Path) -> dict[str, Callable[[Any], object]]:
    vec = _unit(1)
    doc = DocumentInput("d.txt", "", "h", ["chunk text"])
    behaviour = BehaviourStore(tmp_path / "behaviour.sqlite")
    index = ExactVectorIndex(store)
    searcher = HybridSearcher(store, None, index=index)
    return {
        "add_memories": lambda t: store.add_memories(t, [MemoryInput("leaked text")], vec, embedder=FAKE),
        "add_documents": lambda t: store.add_documents(t, [doc], [vec], embedder=FAKE),
        "update_memory": lambda t: store.update_memory(t, 1, {"importance": 0.1}, None, embedder=None, agent_id=None),
        "erase_rows": lambda t: store.erase_rows(t, [1], reason="x"),
        "erase_tenant_rows": lambda t: store.erase_tenant_rows(t),
        "get": lambda t: store.get(t, [1]),
        "search_lexical": lambda t: store.search_lexical(t, "memory", 5),
        "filtered_ids": lambda t: store.filtered_ids(t, SearchFilter(agent_id="bot")),
        "export": lambda t: list(store.export(t)),
        "touch": lambda t: store.touch(t, [1]),
        "vectors_after": lambda t: store.vectors_after(t, 0),
        "vectors_by_ids": lambda t: store.vectors_by_ids(t, [1]),
        "vector_ids": lambda t: store.vector_ids(t),
        "vector_state": lambda t: store.vector_state(t),
        "stats": lambda t: store.stats(t),
        "document_hash": lambda t: store.document_hash(t, "d.txt"),
        "index.search": lambda t: index.search(t, vec[0], 5),
        "index.ids": lambda t: index.ids(t),
        "index.delete": lambda t: index.delete(t, [1]),
        "searcher.search": lambda t: searcher.search(t, "memory", mode="lexical"),
        "behaviour.record": lambda t: behaviour.record(t, 1, "up"),
        "behaviour.summary": lambda t: behaviour.summary(t, [1]),
        "behaviour.erase_tenant": lambda t: behaviour.erase_tenant(t),
    }


@pytest.mark.parametrize("tenant", BAD_TENANTS, ids=repr)
def test_calls_without_a_tenant_are_refused_and_write_nothing(tmp_path: Path, tenant: Any) -> None:
    path = tmp_path / "store.sqlite"
    with MemoryStore(path) as store:
        store.add_memories("real", [MemoryInput("a stored memory")], _unit(1), embedder=FAKE)
        for name, call in _store_calls(store, tmp_path).items():
            with pytest.raises(InputError, match="tenant is required"):
                call(tenant)
                pytest.fail(f"{name} accepted tenant {tenant!r}")
        assert store.stats("real")["memories"] == 1
        assert [r.content for r in store.export("real")] == ["a stored memory"]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT DISTINCT tenant FROM memories").fetchall() == [("real",)]
        assert conn.execute("SELECT DISTINCT tenant FROM audit_log").fetchall() == [("real",)]
    finally:
        conn.close()


@pytest.mark.parametrize("tenant", ["", "  ", 5], ids=repr)
def test_memory_without_a_tenant_is_refused(tmp_path: Path, tenant: Any) -> None:
    settings = get_settings(data_dir=tmp_path / "data")
    with pytest.raises(InputError, match="tenant is required"):
        open_engine(settings, tenant=tenant)
    with pytest.raises(InputError, match="tenant is required"):
        open_engine(get_settings(data_dir=tmp_path / "data", tenant="   "))
