"""Erasure is complete: after ``Memory.erase`` no trace of the erased text is left anywhere hopmem writes.

Each erased memory carries a unique marker token. After the erase, every table (FTS shadow tables included) of every
SQLite file, the FTS vocabulary, the vector indexes, the behavioural file, the conversation checkpoints and the raw
bytes of every file in the data directory are scanned for it. A memory that was not erased carries its own marker and
must be found by the very same scans, so a scan that sees nothing cannot pass by accident.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import pytest

from hopmem.memory.engine import MemoryEngine
from hopmem.memory.errors import StoreError
from hopmem.memory.vectors.exact import ExactVectorIndex
from hopmem.settings import Settings, get_settings
from tests.memory.engines import open_engine

TENANT = "acme"
OTHER = "globex"
SELECTORS = ("ids", "filter", "agent", "tenant")


class _ThreadState(TypedDict, total=False):
    question: str
    evidence: list[dict[str, Any]]
    answer: str


def _write_thread(path: Path, thread_id: str, memory_id: int, text: str) -> None:
    """Checkpoint a real LangGraph conversation (SqliteSaver) whose state quotes ``text``, as the agent does."""
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    def answer(state: _ThreadState) -> dict[str, Any]:
        return {"evidence": [{"id": memory_id, "text": text}], "answer": f"From memory [1]: {text}"}

    builder = StateGraph(_ThreadState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        graph = builder.compile(checkpointer=SqliteSaver(conn))
        state = graph.invoke({"question": "what did I say?"}, config={"configurable": {"thread_id": thread_id}})
        assert text in state["answer"]
    finally:
        conn.close()


def _marker(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


@dataclass
class World:
    settings: Settings
    acme: MemoryEngine
    globex: MemoryEngine
    target: int  # acme: the memory every selector erases (marker ``erased``)
    bystander: int  # acme: kept unless the whole tenant goes (marker ``near``)
    foreign: int  # globex: always kept (marker ``far``)
    erased: str
    near: str
    far: str

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    settings = get_settings(data_dir=tmp_path / "data")
    erased, near, far = _marker("zyxqu"), _marker("wvkmo"), _marker("pjrtl")
    acme = open_engine(settings, tenant=TENANT)
    globex = open_engine(settings, tenant=OTHER)
    target = acme.add(
        f"The vault code for the north gate is {erased} and nobody else knows it.",
        title=f"vault {erased}",
        tags=["secret"],
        metadata={"note": erased},
        agent="bot-x",
        source_class="agent",
    )
    bystander = acme.add(
        f"The garden shed key hides under the blue pot, tagged {near}.",
        title=f"shed {near}",
        tags=["public"],
        metadata={"note": near},
        agent="bot-y",
    )
    foreign = globex.add(f"The vault code for the south gate is {far} in the other company.", agent="bot-x")
    # feedback that quotes each memory, and a checkpointed conversation that quotes each memory
    acme.feedback(target.id, "up", query=f"what is the vault code {erased}")
    acme.feedback(bystander.id, "down", query=f"where is the key {near}")
    globex.feedback(foreign.id, "click", query=f"south gate {far}")
    _write_thread(settings.checkpoint_path, f"{TENANT}:t1", target.id, target.content)
    _write_thread(settings.checkpoint_path, f"{TENANT}:t2", bystander.id, bystander.content)
    _write_thread(settings.checkpoint_path, f"{OTHER}:t3", foreign.id, foreign.content)
    # warm the exact index so that erasing has cached rows to drop
    assert target.id in acme.index.ids(TENANT)
    built = World(settings, acme, globex, target.id, bystander.id, foreign.id, erased, near, far)
    yield built
    acme.close()
    globex.close()


def _erase(world: World, selector: str) -> Any:
    memory = world.acme
    if selector == "ids":
        return memory.erase([world.target])
    if selector == "filter":
        return memory.erase(tags=["secret"])
    if selector == "agent":
        return memory.erase(agent="bot-x")
    return memory.erase(everything=True)


# ---- scans ----------------------------------------------------------------------------------------------------


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return b""


def _table_hits(db: Path, needle: str) -> list[str]:
    """``table.column`` of every cell of every table of ``db`` (FTS shadow tables too) that holds ``needle``."""
    data = needle.encode("utf-8")
    hits: list[str] = []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        assert tables, f"{db} has no tables"
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                hits.extend(
                    f"{table}.{col}" for col, value in zip(columns, row, strict=True) if data in _as_bytes(value)
                )
    finally:
        conn.close()
    return hits


def _fts_terms(db: Path, prefix: str) -> list[str]:
    """The terms of the FTS index that start with ``prefix`` (porter stemming may trim a marker's end)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, memories_fts, 'row')")
        return [str(r[0]) for r in conn.execute("SELECT term FROM temp.vocab WHERE term LIKE ?", (prefix + "%",))]
    finally:
        conn.close()


def _file_hits(root: Path, needle: str) -> list[str]:
    """Every file under ``root`` whose raw bytes hold ``needle``."""
    data = needle.encode("utf-8")
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and data in p.read_bytes())


def _thread_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {str(r[0]) for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    finally:
        conn.close()


def _traces(world: World, marker: str) -> dict[str, list[str]]:
    """Where ``marker`` (its first 20 characters, which stemming leaves whole) is found, per kind of place."""
    needle = marker[:20]
    # raw bytes first: opening a file with SQLite below must not be what moves the text around
    found = {"files": _file_hits(world.data_dir, needle)}
    found["store tables"] = _table_hits(world.settings.store_path, needle)
    found["fts terms"] = _fts_terms(world.settings.store_path, needle)
    found["behaviour tables"] = _table_hits(world.settings.behaviour_path, needle)
    found["checkpoint tables"] = _table_hits(world.settings.checkpoint_path, needle)
    return found


@pytest.mark.parametrize("selector", SELECTORS)
def test_erase_leaves_no_trace_of_the_erased_text_and_keeps_the_rest(world: World, selector: str) -> None:
    whole_tenant = selector == "tenant"
    gone_ids = [world.target, world.bystander] if whole_tenant else [world.target]
    kept_ids = [world.foreign] if whole_tenant else [world.bystander, world.foreign]
    gone_markers = [world.erased, world.near] if whole_tenant else [world.erased]
    kept_markers = [world.far] if whole_tenant else [world.near, world.far]

    # Before: every marker is found everywhere, so the scans do see text that is there.
    for marker in (world.erased, world.near, world.far):
        before = _traces(world, marker)
        assert before["files"] and before["store tables"] and before["fts terms"], (marker, before)
        assert before["behaviour tables"] and before["checkpoint tables"], (marker, before)

    report = _erase(world, selector)

    assert sorted(report.ids) == sorted(gone_ids)
    assert (report.memories, report.vectors) == (len(gone_ids), len(gone_ids))
    assert report.feedback == len(gone_ids)
    assert report.threads == len(gone_ids)
    assert report.files_scrubbed is True

    for marker in gone_markers:
        traces = _traces(world, marker)
        assert traces == {k: [] for k in traces}, f"erased text {marker[:10]}... left traces: {traces}"
    for marker in kept_markers:
        traces = _traces(world, marker)
        assert all(traces.values()), f"kept text {marker[:10]}... is missing from: {traces}"
        assert "memories.content" in traces["store tables"]
        assert any("hopmem.sqlite" in f for f in traces["files"])

    # rows, vectors, search
    store = world.acme.store
    assert store.get(TENANT, gone_ids) == []
    assert [r.id for r in store.get(TENANT, [world.bystander])] == ([] if whole_tenant else [world.bystander])
    assert [r.id for r in world.globex.get_many([world.foreign])] == [world.foreign]
    assert not set(gone_ids) & store.vector_ids(TENANT)
    assert not set(gone_ids) & world.acme.index.ids(TENANT)
    fresh = ExactVectorIndex(store)
    assert not set(gone_ids) & fresh.ids(TENANT)
    assert set(kept_ids) <= fresh.ids(TENANT) | fresh.ids(OTHER)
    for mode in ("lexical", "dense", "hybrid"):
        assert not {r.id for r in world.acme.search(world.erased, mode=mode, k=50)} & set(gone_ids)
    assert [r.id for r in world.globex.search(world.far, mode="lexical")] == [world.foreign]
    if not whole_tenant:
        assert [r.id for r in world.acme.search(world.near, mode="lexical")] == [world.bystander]
    assert store.integrity_problems() == []

    # behaviour: the erased memories' feedback is gone, the rest stays
    behaviour = world.acme.behaviour
    assert behaviour.summary(TENANT, gone_ids) == {}
    assert set(behaviour.summary(OTHER, [world.foreign])) == {world.foreign}
    if not whole_tenant:
        assert set(behaviour.summary(TENANT, [world.bystander])) == {world.bystander}

    # conversations: the threads quoting erased text are gone, the others stay
    threads = _thread_ids(world.settings.checkpoint_path)
    assert f"{TENANT}:t1" not in threads
    assert f"{OTHER}:t3" in threads
    assert (f"{TENANT}:t2" in threads) is not whole_tenant

    # the audit log records the erase (ids and count), never the content
    conn = sqlite3.connect(f"file:{world.settings.store_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT tenant, detail FROM audit_log WHERE action = 'memory.erase' ORDER BY id").fetchall()
    finally:
        conn.close()
    assert [r[0] for r in rows] == [TENANT]
    detail = json.loads(rows[0][1])
    assert sorted(detail["ids"]) == sorted(gone_ids)
    assert detail["count"] == len(gone_ids)
    for marker in (world.erased, world.near, world.far):
        assert marker[:10] not in rows[0][1]


def test_erase_of_nothing_matching_changes_nothing(world: World) -> None:
    report = world.acme.erase(agent="nobody")
    assert (report.memories, report.feedback, report.threads) == (0, 0, 0)
    for marker in (world.erased, world.near, world.far):
        traces = _traces(world, marker)
        assert all(traces.values()), (marker, traces)
    assert world.acme.stats()["memories"] == 2


@pytest.mark.parametrize("erase_backend", ["qdrant", "exact"])
def test_erase_removes_vectors_from_qdrant_too(tmp_path: Path, erase_backend: str) -> None:
    """The qdrant index (when that backend exists) loses the erased ids, also when another backend is active."""
    pytest.importorskip("hopmem.memory.vectors.qdrant")
    data = tmp_path / "data"
    erased, kept = _marker("zyxqu"), _marker("wvkmo")
    with open_engine(get_settings(data_dir=data, vector_backend="qdrant"), tenant=TENANT) as writer:
        target = writer.add(f"The vault code is {erased} for the north gate.")
        other = writer.add(f"The shed key is {kept} under the pot.")
        writer.search("vault code", mode="dense")  # brings the qdrant index in step with SQLite
        assert {target.id, other.id} <= writer.index.ids(TENANT)
    with open_engine(get_settings(data_dir=data, vector_backend=erase_backend), tenant=TENANT) as eraser:
        report = eraser.erase([target.id])
        assert report.ids == [target.id]
    with open_engine(get_settings(data_dir=data, vector_backend="qdrant"), tenant=TENANT) as reader:
        ids = reader.index.ids(TENANT)
        assert target.id not in ids
        assert other.id in ids
        assert [r.id for r in reader.search(f"vault code {erased}", mode="dense", k=5)] == [other.id]
    assert _file_hits(data, erased[:20]) == []
    assert _file_hits(data, kept[:20])


def test_erase_removes_earlier_versions_and_ingested_chunks(world: World, tmp_path: Path) -> None:
    """Text a memory held before an update, and an ingested document's chunk, leave the files with the erase."""
    old, new, doc_marker = _marker("zyxqu"), _marker("zyxqv"), _marker("zyxqw")
    memory = world.acme
    record = memory.add(f"First version of the plan {old} drafted on Monday.")
    memory.update(record.id, content=f"Second version of the plan {new} agreed on Friday.", reason="revised")
    source = tmp_path / "notes.txt"
    source.write_text(f"Meeting notes. The launch password is {doc_marker} and must stay private.\n")
    report = memory.ingest([source], progress=False)
    assert report.added == 1
    chunk_ids = [r.id for r in memory.export() if r.source_class == "document"]
    assert len(chunk_ids) == 1
    assert memory.stats()["documents"] == 1
    for marker in (old, new, doc_marker):
        assert _traces(world, marker)["files"], marker  # the text is in the files before the erase

    erased = memory.erase([record.id, *chunk_ids])

    assert sorted(erased.ids) == sorted([record.id, *chunk_ids])
    assert erased.documents == 1
    assert memory.stats()["documents"] == 0
    for marker in (old, new, doc_marker):
        traces = _traces(world, marker)
        assert traces == {k: [] for k in traces}, f"{marker[:10]}... left traces: {traces}"
    assert all(_traces(world, world.near).values())


def test_erase_interrupted_by_a_locked_checkpoint_file_completes_on_retry(
    world: World, one_sentence: Callable[[str], None]
) -> None:
    holder = sqlite3.connect(world.settings.checkpoint_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a chat process in the middle of a write
    try:
        with pytest.raises(StoreError) as caught:
            world.acme.erase([world.target])
        one_sentence(str(caught.value))
        assert "retry" in str(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    world.acme.erase([world.target])  # the retry the message asks for

    traces = _traces(world, world.erased)
    assert traces == {k: [] for k in traces}, f"erased text left traces after the retry: {traces}"
    assert f"{TENANT}:t1" not in _thread_ids(world.settings.checkpoint_path)
