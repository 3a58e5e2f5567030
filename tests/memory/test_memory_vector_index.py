"""ExactVectorIndex: true nearest neighbours, and a cache that follows writes of other connections."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from hopmem.memory.records import DocumentInput
from hopmem.memory.store import MemoryStore
from hopmem.memory.vectors.exact import ExactVectorIndex

Vectors = Callable[..., np.ndarray]
MakeDoc = Callable[..., DocumentInput]
DIM = 16
EMBEDDER = ("test-random", DIM)


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


class _AfterSpy:
    """Wraps MemoryStore.vectors_after to record the ``after_id`` of each call."""

    def __init__(self, store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[int] = []
        original = store.vectors_after

        def spy(tenant: str, after_id: int) -> tuple[np.ndarray, np.ndarray]:
            self.calls.append(after_id)
            return original(tenant, after_id)

        monkeypatch.setattr(store, "vectors_after", spy)


@pytest.fixture()
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vectors.sqlite"


@pytest.fixture()
def writer(db_path: Path) -> Iterator[MemoryStore]:
    with MemoryStore(db_path) as store:
        yield store


def _memory_ids(store: MemoryStore, tenant: str, source: str) -> list[int]:
    """The memory ids of a document, read with plain SQL (so that spies on the store see nothing)."""
    rows = store.conn.execute(
        "SELECT m.id FROM memories m JOIN documents d ON d.id = m.document_id"
        " WHERE d.tenant = ? AND d.source = ? ORDER BY m.id",
        (tenant, source),
    ).fetchall()
    return [int(r[0]) for r in rows]


def test_search_returns_the_exact_nearest_neighbours(writer: MemoryStore, make_doc: MakeDoc) -> None:
    rng = np.random.default_rng(42)
    vectors = _unit(rng.normal(size=(300, DIM)))
    docs = [make_doc(f"doc{d}", [f"v{d * 10 + c}" for c in range(10)]) for d in range(30)]
    writer.add_documents("t", docs, [vectors[d * 10 : d * 10 + 10] for d in range(30)], embedder=EMBEDDER)
    # Map memory ids to rows of ``vectors`` through the stored content, not through the stored blobs.
    ids, _ = writer.vectors_after("t", 0)
    row_of = {r.id: int(r.content[1:]) for r in writer.get("t", [int(i) for i in ids])}
    assert sorted(row_of.values()) == list(range(300))
    index = ExactVectorIndex(writer)

    for query in _unit(rng.normal(size=(25, DIM))):
        hits = index.search("t", query, 10)
        brute = vectors @ query
        expected_rows = np.argsort(-brute, kind="stable")[:10]
        assert [row_of[h.memory_id] for h in hits] == expected_rows.tolist()
        np.testing.assert_allclose([h.score for h in hits], brute[expected_rows], rtol=1e-5, atol=1e-6)

    # A stored vector is its own nearest neighbour, with similarity 1.
    some_id, some_row = next(iter(row_of.items()))
    [top] = index.search("t", vectors[some_row], 1)
    assert top.memory_id == some_id
    assert top.score == pytest.approx(1.0, abs=1e-5)


def test_k_is_clipped_and_empty_cases_return_nothing(
    writer: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors
) -> None:
    index = ExactVectorIndex(writer)
    query = random_vectors(1, dim=DIM)[0]
    assert index.search("t", query, 5) == []  # nothing stored yet
    writer.add_documents("t", [make_doc("a", ["x", "y", "z"])], [random_vectors(3, dim=DIM)], embedder=EMBEDDER)
    assert len(index.search("t", query, 50)) == 3
    assert index.search("t", query, 0) == []
    assert index.search("t", query, -1) == []
    assert index.search("nobody", query, 5) == []
    assert len(index) == 3


def test_rows_written_by_another_connection_are_appended_incrementally(
    db_path: Path,
    writer: MemoryStore,
    make_doc: MakeDoc,
    random_vectors: Vectors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = random_vectors(4, dim=DIM, seed=1)
    writer.add_documents(
        "t",
        [make_doc("one", ["a", "b"]), make_doc("two", ["c", "d"])],
        [first[:2], first[2:]],
        embedder=EMBEDDER,
    )
    with MemoryStore(db_path) as reader:
        index = ExactVectorIndex(reader)
        spy = _AfterSpy(reader, monkeypatch)
        probe = random_vectors(1, dim=DIM, seed=2)[0]
        assert len(index.search("t", probe, 10)) == 4
        assert spy.calls == [0]
        loaded_max = max(_memory_ids(reader, "t", "one") + _memory_ids(reader, "t", "two"))

        # Another process (here: another connection) appends a document whose vector is the probe.
        with MemoryStore(db_path) as other:
            other.add_documents("t", [make_doc("three", ["e"])], [probe[None, :]], embedder=EMBEDDER)
        [new_id] = _memory_ids(reader, "t", "three")

        hits = index.search("t", probe, 10)
        assert hits[0].memory_id == new_id
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert len(hits) == 5
        assert spy.calls == [0, loaded_max]  # only the new rows were read

        # Nothing changed: nothing is read again.
        index.search("t", probe, 10)
        assert spy.calls == [0, loaded_max]


def test_a_removal_by_another_connection_reloads_the_tenant(
    db_path: Path,
    writer: MemoryStore,
    make_doc: MakeDoc,
    random_vectors: Vectors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = random_vectors(3, dim=DIM, seed=3)
    writer.add_documents(
        "t", [make_doc("doc", ["a", "b"]), make_doc("stay", ["c"])], [old[:2], old[2:]], embedder=EMBEDDER
    )
    index = ExactVectorIndex(writer)
    spy = _AfterSpy(writer, monkeypatch)
    removed = set(_memory_ids(writer, "t", "doc"))
    assert index.search("t", old[0], 1)[0].memory_id in removed
    assert spy.calls == [0]

    # Another connection replaces "doc": its old rows and vectors are deleted.
    replacement = random_vectors(1, dim=DIM, seed=4)
    with MemoryStore(db_path) as other:
        [write] = other.add_documents("t", [make_doc("doc", ["new"])], [replacement], embedder=EMBEDDER)
        assert write.status == "replaced"

    for query in (*old, replacement[0]):
        hits = index.search("t", query, 10)
        assert not removed & {h.memory_id for h in hits}
        assert len(hits) == 2
    assert spy.calls[1] == 0  # a full reload, not an append
    assert index.search("t", old[0], 10)[0].memory_id not in removed
    assert index.search("t", replacement[0], 1)[0].memory_id == _memory_ids(writer, "t", "doc")[0]
    assert len(index) == 2


def test_a_removal_that_lowers_the_max_id_is_noticed(
    db_path: Path, writer: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors
) -> None:
    vectors = random_vectors(2, dim=DIM, seed=5)
    writer.add_documents(
        "t", [make_doc("a", ["a"]), make_doc("b", ["b"])], [vectors[:1], vectors[1:]], embedder=EMBEDDER
    )
    index = ExactVectorIndex(writer)
    assert len(index.search("t", vectors[1], 10)) == 2
    [gone] = _memory_ids(writer, "t", "b")
    with MemoryStore(db_path) as other:
        other.conn.execute("DELETE FROM documents WHERE source = 'b'")
    hits = index.search("t", vectors[1], 10)
    assert [h.memory_id for h in hits] == _memory_ids(writer, "t", "a")
    assert gone not in {h.memory_id for h in hits}
