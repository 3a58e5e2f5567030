"""The VectorIndex contract (memory/vectors/base.py), checked the same way for every backend.

Each test runs over real SQLite stores in tmp_path holding deterministic random unit vectors (no embedder model):
``exact`` (the in-process matrix), ``qdrant-memory`` (qdrant-client, ``:memory:``) and ``qdrant-local`` (a Qdrant
folder in tmp_path). The qdrant backends use small batches so that batching paths run too. ``qdrant-memory`` runs
as against a server (tenant and ids always in the Qdrant filter); ``qdrant-local`` keeps local mode's shortcuts
(an ``ids`` search scores the fetched points in the client; a one-tenant collection is searched unfiltered).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from hopmem.memory.errors import InputError, StoreError
from hopmem.memory.records import DocumentInput, Hit
from hopmem.memory.store import MemoryStore
from hopmem.memory.vectors.base import VectorIndex
from hopmem.memory.vectors.exact import ExactVectorIndex

DIM = 16
EMBEDDER = ("test-random", DIM)
BACKENDS = ("exact", "qdrant-memory", "qdrant-local")
QDRANT_OPTIONS: dict[str, Any] = {"batch_size": 16, "scroll_size": 8}
# ExactVectorIndex.search takes argpartition's arbitrary pick of the rows tied with the k-th score, so a cut through a
# tie group can return a higher id than the contract allows; the fix belongs in memory/vectors/exact.py.

Ids = NDArray[np.int64]
Matrix = NDArray[np.float32]


# ---- data helpers ----------------------------------------------------------------------------------------------


def unit(n: int, *, seed: int) -> Matrix:
    rows = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def lattice(overlaps: Sequence[int]) -> Matrix:
    """Unit vectors with four entries of 0.5: against :func:`lattice_query` each scores 0.25 x ``overlap``.

    Every product is exact in float32 whatever the summation order, so equal overlaps are true ties in every backend.
    """
    rows = np.zeros((len(overlaps), DIM), np.float32)
    for row, overlap in enumerate(overlaps):
        inside = list(range(overlap))  # positions 0-3 are the query's
        outside = [4 + (row + j) % (DIM - 4) for j in range(4 - overlap)]
        rows[row, inside + outside] = 0.5
    return rows


def lattice_query() -> Matrix:
    query = np.zeros(DIM, np.float32)
    query[:4] = 0.5
    return query


def add(store: MemoryStore, tenant: str, vectors: Matrix, *, prefix: str = "v", per_doc: int = 3) -> Ids:
    """Store ``vectors`` for ``tenant`` as documents of ``per_doc`` chunks; returns their memory ids, row by row."""
    docs: list[DocumentInput] = []
    parts: list[Matrix] = []
    for start in range(0, len(vectors), per_doc):
        chunks = [f"{tenant}:{prefix}:{row}" for row in range(start, min(start + per_doc, len(vectors)))]
        digest = hashlib.sha256("\x1f".join(chunks).encode()).hexdigest()
        docs.append(DocumentInput(f"{prefix}-{start}", "", digest, chunks))
        parts.append(vectors[start : start + per_doc])
    store.add_documents(tenant, docs, parts, embedder=EMBEDDER)
    id_of = {
        str(r[1]): int(r[0])
        for r in store.conn.execute("SELECT id, content FROM memories WHERE tenant = ?", (tenant,)).fetchall()
    }
    return np.array([id_of[f"{tenant}:{prefix}:{row}"] for row in range(len(vectors))], np.int64)


def brute(ids: Ids, vectors: Matrix, query: Matrix, k: int) -> list[tuple[int, float]]:
    """The true top ``k`` by inner product, ties by ascending id."""
    scores = vectors.astype(np.float64) @ query.astype(np.float64)
    order = np.lexsort((ids, -scores))[: max(k, 0)]
    return [(int(ids[i]), float(scores[i])) for i in order]


def assert_hits(hits: list[Hit], expected: list[tuple[int, float]]) -> None:
    assert [h.memory_id for h in hits] == [i for i, _ in expected]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], rtol=0, atol=1e-5)


def delete_rows(db_path: Path, ids: Sequence[int]) -> None:
    """Delete memories (their vectors go by cascade) through a separate connection, in one transaction."""
    with MemoryStore(db_path) as other:
        other.conn.execute("BEGIN IMMEDIATE")
        for memory_id in ids:
            other.conn.execute("DELETE FROM memories WHERE id = ?", (int(memory_id),))
        other.conn.execute("COMMIT")


# ---- backends ----------------------------------------------------------------------------------------------------


def open_backend(kind: str, store: MemoryStore, qdrant_dir: Path) -> VectorIndex:
    if kind == "exact":
        return ExactVectorIndex(store)
    pytest.importorskip("qdrant_client")
    from hopmem.memory.vectors.qdrant import QdrantVectorIndex

    if kind == "qdrant-memory":
        return QdrantVectorIndex(store, ":memory:", ids_in_filter=True, tenant_filter=True, **QDRANT_OPTIONS)
    return QdrantVectorIndex(store, str(qdrant_dir), **QDRANT_OPTIONS)


def qdrant_points(index: VectorIndex, tenant: str | None = None) -> dict[int, str]:
    """{id: tenant} of the points a qdrant index holds right now, read straight from Qdrant (no syncing)."""
    from qdrant_client.http import models

    from hopmem.memory.vectors.qdrant import QdrantVectorIndex

    assert isinstance(index, QdrantVectorIndex)
    name = index.collection_name
    if name is None or not index.client.collection_exists(name):
        return {}
    flt = None
    if tenant is not None:
        flt = models.Filter(must=[models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant))])
    records, _ = index.client.scroll(name, scroll_filter=flt, limit=100_000, with_payload=True)
    return {int(r.id): str((r.payload or {}).get("tenant")) for r in records}


@dataclass
class Backend:
    """One backend under test over the store at ``db_path``; every index it opens is closed after the test."""

    kind: str
    db_path: Path
    qdrant_dir: Path
    store: MemoryStore
    opened: list[VectorIndex] = field(default_factory=list)

    def open(self, store: MemoryStore | None = None) -> VectorIndex:
        index = open_backend(self.kind, store or self.store, self.qdrant_dir)
        self.opened.append(index)
        return index

    def held_now(self, index: VectorIndex, tenant: str) -> set[int]:
        """What the backend holds for ``tenant`` at this moment, without bringing it in step with SQLite."""
        if isinstance(index, ExactVectorIndex):
            cached = index._tenants.get(tenant)
            return set() if cached is None else {int(i) for i in cached.ids}
        return set(qdrant_points(index, tenant))

    def tamper(self, index: VectorIndex, tenant: str, ids: Ids, fake: Matrix) -> int:
        """Change the backend behind the index's back; returns how many vectors a repair must change.

        Qdrant: two points deleted, a point SQLite does not know (vector ``fake``) added, one vector replaced, and a
        point without a tenant added.
        Exact: nothing can be changed behind its back (it re-reads SQLite), so nothing needs repair.
        """
        if self.kind == "exact":
            return 0
        from qdrant_client.http import models

        from hopmem.memory.vectors.qdrant import QdrantVectorIndex

        assert isinstance(index, QdrantVectorIndex) and index.collection_name is not None
        client, name = index.client, index.collection_name
        client.delete(name, points_selector=models.PointIdsList(points=[int(ids[0]), int(ids[1])]), wait=True)
        client.upsert(
            name,
            points=[
                models.PointStruct(id=10_000_000, vector=fake.tolist(), payload={"tenant": tenant}),
                models.PointStruct(id=int(ids[2]), vector=(-fake).tolist(), payload={"tenant": tenant}),
                models.PointStruct(id=10_000_001, vector=fake.tolist(), payload={}),
            ],
            wait=True,
        )
        return 5


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    db_path = tmp_path / "store.sqlite"
    with MemoryStore(db_path) as store:
        bench = Backend(str(request.param), db_path, tmp_path / "qdrant", store)
        yield bench
        for index in bench.opened:
            index.close()


# ---- the contract ------------------------------------------------------------------------------------------------


def test_search_returns_the_exact_nearest_neighbours(backend: Backend) -> None:
    vectors = unit(240, seed=1)
    ids = add(backend.store, "t", vectors)
    index = backend.open()
    for query in unit(25, seed=2):
        assert_hits(index.search("t", query, 10), brute(ids, vectors, query, 10))
    # A stored vector is its own nearest neighbour, at similarity 1.
    [top] = index.search("t", vectors[17], 1)
    assert top.memory_id == ids[17]
    assert top.score == pytest.approx(1.0, abs=1e-5)


def test_k_is_clipped_and_non_positive_k_returns_nothing(backend: Backend) -> None:
    vectors = unit(5, seed=3)
    ids = add(backend.store, "t", vectors)
    index = backend.open()
    query = unit(1, seed=4)[0]
    assert_hits(index.search("t", query, 50), brute(ids, vectors, query, 50))
    assert len(index.search("t", query, 50)) == 5
    assert index.search("t", query, 0) == []
    assert index.search("t", query, -3) == []
    assert index.search("nobody", query, 5) == []


def test_an_index_opened_on_an_empty_store_follows_the_first_writes(backend: Backend) -> None:
    index = backend.open()
    query = unit(1, seed=5)[0]
    assert index.search("t", query, 5) == []
    assert index.ids("t") == set()
    assert index.reconcile() == 0
    assert index.rebuild() == 0
    vectors = unit(4, seed=6)
    ids = add(backend.store, "t", vectors)
    assert_hits(index.search("t", query, 5), brute(ids, vectors, query, 5))
    assert index.ids("t") == set(ids.tolist())


def test_ties_break_by_ascending_id_at_every_cut(backend: Backend) -> None:
    overlaps = [2, 4, 1, 2, 0, 3, 2, 4, 1, 2, 3, 2, 0, 2, 4, 2, 1, 2]
    vectors = lattice(overlaps)
    ids = add(backend.store, "t", vectors, per_doc=4)
    index = backend.open()
    query = lattice_query()
    for k in range(1, len(overlaps) + 2):
        expected = brute(ids, vectors, query, k)
        assert_hits(index.search("t", query, k), expected)
    # The same under an id restriction that cuts through the tie groups.
    subset = ids[::2]
    for k in (1, 3, 5):
        assert_hits(index.search("t", query, k, ids=subset.tolist()), brute(subset, vectors[::2], query, k))


def test_tenants_never_see_each_other(backend: Backend) -> None:
    a_vectors, b_vectors = unit(30, seed=7), unit(30, seed=8)
    a_ids = add(backend.store, "A", a_vectors)
    b_ids = add(backend.store, "B", b_vectors)
    index = backend.open()
    for row in (0, 11, 29):
        probe = b_vectors[row]
        # Positive control: B finds its own vector, at similarity 1.
        top = index.search("B", probe, 1)[0]
        assert (top.memory_id, round(top.score, 4)) == (b_ids[row], 1.0)
        # A, asked for everything near B's vector, gets its own memories only, in its own true order.
        hits = index.search("A", probe, 100)
        assert not {h.memory_id for h in hits} & set(b_ids.tolist())
        assert_hits(hits, brute(a_ids, a_vectors, probe, 100))
    # Ids of another tenant never match, even when they are all that is asked for.
    assert index.search("A", b_vectors[0], 10, ids=b_ids.tolist()) == []
    mixed = [*b_ids[:5].tolist(), *a_ids[:3].tolist()]
    assert {h.memory_id for h in index.search("A", b_vectors[0], 10, ids=mixed)} == set(a_ids[:3].tolist())
    assert index.ids("A") == set(a_ids.tolist())
    assert index.ids("B") == set(b_ids.tolist())


def test_ids_restrict_the_search(backend: Backend) -> None:
    vectors = unit(60, seed=9)
    ids = add(backend.store, "t", vectors)
    index = backend.open()
    chosen = np.sort(np.random.default_rng(10).choice(len(ids), size=12, replace=False))
    query = unit(1, seed=11)[0]
    expected = brute(ids[chosen], vectors[chosen], query, 5)
    assert_hits(index.search("t", query, 5, ids=ids[chosen].tolist()), expected)
    assert_hits(index.search("t", query, 5, ids=tuple(ids[chosen].tolist())), expected)
    # Unknown ids are ignored; an empty restriction matches nothing.
    assert_hits(index.search("t", query, 5, ids=[*ids[chosen].tolist(), 987_654]), expected)
    assert index.search("t", query, 5, ids=[]) == []
    assert index.search("t", query, 5, ids=[987_654]) == []


def test_rows_appended_by_another_connection_are_found_on_the_next_search(backend: Backend) -> None:
    vectors = unit(20, seed=12)
    ids = add(backend.store, "t", vectors)
    index = backend.open()
    probe = unit(1, seed=13)[0]
    assert probe.tolist() not in vectors.tolist()
    assert index.search("t", probe, 1)[0].memory_id in set(ids.tolist())
    with MemoryStore(backend.db_path) as other:
        [new_id] = add(other, "t", probe[None, :], prefix="new")
    top = index.search("t", probe, 1)[0]
    assert top.memory_id == new_id
    assert top.score == pytest.approx(1.0, abs=1e-5)
    all_ids, all_vectors = np.append(ids, new_id), np.vstack([vectors, probe[None, :]])
    assert_hits(index.search("t", probe, 50), brute(all_ids, all_vectors, probe, 50))
    assert index.ids("t") == set(all_ids.tolist())


def test_rows_deleted_in_sqlite_are_no_longer_found(backend: Backend) -> None:
    vectors = unit(40, seed=14)
    ids = add(backend.store, "t", vectors)
    index = backend.open()
    assert index.search("t", vectors[5], 1)[0].memory_id == ids[5]
    gone = [5, 6, 20, 39]  # 39 is the highest id: the max id drops
    delete_rows(backend.db_path, ids[gone].tolist())
    keep = np.setdiff1d(np.arange(len(ids)), gone)
    for row in gone:
        hits = index.search("t", vectors[row], 10)
        assert not {h.memory_id for h in hits} & set(ids[gone].tolist())
        assert_hits(hits, brute(ids[keep], vectors[keep], vectors[row], 10))
    assert index.ids("t") == set(ids[keep].tolist()) == backend.store.vector_ids("t")
    # A removal and an append between two searches.
    delete_rows(backend.db_path, [int(ids[0])])
    fresh = unit(2, seed=15)
    new_ids = add(backend.store, "t", fresh, prefix="fresh")
    keep = keep[keep != 0]
    all_ids, all_vectors = np.concatenate([ids[keep], new_ids]), np.vstack([vectors[keep], fresh])
    assert_hits(index.search("t", fresh[1], 50), brute(all_ids, all_vectors, fresh[1], 50))


def test_a_vector_replaced_in_place_is_searched_by_its_new_value(backend: Backend) -> None:
    vectors = unit(10, seed=16)
    ids = add(backend.store, "t", vectors)
    index = backend.open()
    assert index.search("t", vectors[3], 1)[0].memory_id == ids[3]
    replacement = unit(1, seed=17)[0]
    backend.store.update_memory(
        "t", int(ids[3]), {"content": "rewritten"}, replacement, embedder=EMBEDDER, agent_id=None
    )
    now = vectors.copy()
    now[3] = replacement
    for query in (vectors[3], replacement):
        assert_hits(index.search("t", query, 10), brute(ids, now, query, 10))


def test_delete_removes_vectors_at_once(backend: Backend) -> None:
    vectors = unit(12, seed=18)
    ids = add(backend.store, "t", vectors)
    other_ids = add(backend.store, "u", unit(3, seed=19))
    index = backend.open()
    index.search("t", vectors[0], 3)  # loaded
    victims = ids[:3].tolist()
    # The erasure path: the rows go first, then every index is told.
    backend.store.erase_rows("t", victims, reason="test")
    index.delete("t", victims)
    assert backend.held_now(index, "t") == set(ids[3:].tolist())
    assert not {h.memory_id for h in index.search("t", vectors[0], 12)} & set(victims)
    # Another tenant's ids, or none, delete nothing.
    index.delete("t", other_ids.tolist())
    index.delete("t", [])
    assert index.ids("u") == set(other_ids.tolist())
    assert index.ids("t") == set(ids[3:].tolist())


def test_reconcile_repairs_a_tampered_index(backend: Backend) -> None:
    vectors = unit(30, seed=20)
    ids = add(backend.store, "t", vectors)
    index = backend.open()
    assert index.reconcile() == 0  # freshly opened: in step
    probe = unit(1, seed=21)[0]
    damaged = backend.tamper(index, "t", ids, probe)
    if damaged:  # positive control: the damage shows before the repair
        assert index.search("t", probe, 1)[0].memory_id == 10_000_000
        assert not {int(ids[0]), int(ids[1])} & index.ids("t")
    assert index.reconcile() == damaged
    assert index.reconcile() == 0
    assert index.ids("t") == set(ids.tolist()) == backend.store.vector_ids("t")
    if damaged:
        assert set(qdrant_points(index)) == set(ids.tolist())  # the tenant-less point went too
    for query in (probe, vectors[2], -probe):
        assert_hits(index.search("t", query, 10), brute(ids, vectors, query, 10))


def test_reconcile_drops_tenants_sqlite_no_longer_has(backend: Backend) -> None:
    a_ids = add(backend.store, "A", unit(5, seed=22))
    b_ids = add(backend.store, "B", unit(5, seed=23))
    index = backend.open()
    assert index.ids("B") == set(b_ids.tolist())
    delete_rows(backend.db_path, b_ids.tolist())
    index.reconcile()
    assert backend.held_now(index, "B") == set()
    assert index.ids("B") == set()
    assert index.search("B", unit(1, seed=24)[0], 5) == []
    assert index.ids("A") == set(a_ids.tolist())


def test_rebuild_reloads_everything_from_sqlite(backend: Backend) -> None:
    vectors = unit(25, seed=25)
    ids = add(backend.store, "t", vectors)
    other = add(backend.store, "u", unit(7, seed=26))
    index = backend.open()
    backend.tamper(index, "t", ids, unit(1, seed=27)[0])
    assert index.rebuild() == len(ids) + len(other)
    assert index.reconcile() == 0
    assert index.ids("t") == set(ids.tolist())
    assert index.ids("u") == set(other.tolist())
    query = unit(1, seed=28)[0]
    assert_hits(index.search("t", query, 10), brute(ids, vectors, query, 10))


BAD_TENANTS: list[Any] = ["", "   ", None]


@pytest.mark.parametrize("tenant", BAD_TENANTS)
@pytest.mark.parametrize(
    "call",
    [
        lambda index, tenant: index.search(tenant, np.ones(DIM, np.float32) / 4, 5),
        lambda index, tenant: index.delete(tenant, [1]),
        lambda index, tenant: index.ids(tenant),
    ],
    ids=["search", "delete", "ids"],
)
def test_a_missing_tenant_is_an_input_error(
    backend: Backend, tenant: Any, call: Callable[[VectorIndex, Any], object]
) -> None:
    add(backend.store, "t", unit(3, seed=29))
    index = backend.open()
    with pytest.raises(InputError, match="tenant is required"):
        call(index, tenant)


def test_a_query_of_the_wrong_size_is_refused(backend: Backend) -> None:
    add(backend.store, "t", unit(3, seed=30))
    index = backend.open()
    with pytest.raises(ValueError):
        index.search("t", np.ones(DIM + 1, np.float32), 3)


def test_backend_implements_the_protocol(backend: Backend) -> None:
    index = backend.open()
    assert isinstance(index, VectorIndex)
    assert index.name == backend.kind.split("-")[0]


# ---- across backends -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("queries", ["random", "ties"])
def test_every_backend_ranks_the_same_data_the_same_way(tmp_path: Path, queries: str) -> None:
    pytest.importorskip("qdrant_client")
    with MemoryStore(tmp_path / "store.sqlite") as store:
        ids = add(store, "t", unit(150, seed=31))
        add(store, "u", unit(40, seed=32))
        lattice_ids = add(store, "t", lattice([2, 1, 2, 3, 2, 4, 2, 0]), prefix="tie")
        indexes = [open_backend(kind, store, tmp_path / "qdrant") for kind in BACKENDS]
        try:
            restrict = [*ids[::3].tolist(), *lattice_ids[::2].tolist()]
            for query in unit(15, seed=33) if queries == "random" else lattice_query()[None, :]:
                for k, only in ((10, None), (200, None), (4, restrict)):
                    rankings = [index.search("t", query, k, ids=only) for index in indexes]
                    first = [(h.memory_id, h.score) for h in rankings[0]]
                    for hits in rankings[1:]:
                        assert_hits(hits, first)
        finally:
            for index in indexes:
                index.close()


# ---- qdrant only -------------------------------------------------------------------------------------------------


def test_a_reopened_qdrant_folder_reconciles_with_rows_written_while_it_was_closed(tmp_path: Path) -> None:
    pytest.importorskip("qdrant_client")
    from hopmem.memory.vectors.qdrant import QdrantVectorIndex

    db_path, folder = tmp_path / "store.sqlite", tmp_path / "qdrant"
    with MemoryStore(db_path) as store:
        vectors = unit(20, seed=34)
        ids = add(store, "t", vectors)
        gone_tenant = add(store, "gone", unit(4, seed=35))
        first = QdrantVectorIndex(store, str(folder), **QDRANT_OPTIONS)
        first.search("t", vectors[0], 5)
        first.close()

        # While no index is open: rows added, rows deleted, a vector replaced, a tenant erased.
        added = unit(6, seed=36)
        new_ids = add(store, "t", added, prefix="later")
        delete_rows(db_path, ids[:2].tolist())
        replacement = unit(1, seed=37)[0]
        store.update_memory("t", int(ids[5]), {"content": "changed"}, replacement, embedder=EMBEDDER, agent_id=None)
        store.erase_tenant_rows("gone")

        reopened = QdrantVectorIndex(store, str(folder), **QDRANT_OPTIONS)
        try:
            [storage] = folder.glob("collection/*/storage.sqlite")
            with sqlite3.connect(storage) as conn:  # the local files were switched to WAL
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            # Opening alone brought Qdrant in step, before any search.
            held = qdrant_points(reopened)
            assert set(held) == store.vector_ids("t") == set(ids[2:].tolist()) | set(new_ids.tolist())
            assert set(held.values()) == {"t"}
            assert not set(held) & set(gone_tenant.tolist())
            assert reopened.reconcile() == 0
            all_ids = np.concatenate([ids[2:], new_ids])
            current = np.vstack([vectors[2:], added])
            current[3] = replacement  # ids[5] is row 3 of ids[2:]
            for query in (replacement, vectors[5], added[0]):
                assert_hits(reopened.search("t", query, 8), brute(all_ids, current, query, 8))
        finally:
            reopened.close()


def test_a_qdrant_folder_is_refused_while_another_client_holds_it(
    tmp_path: Path, one_sentence: Callable[[str], None]
) -> None:
    pytest.importorskip("qdrant_client")
    from hopmem.memory.vectors.qdrant import QdrantVectorIndex

    with MemoryStore(tmp_path / "store.sqlite") as store:
        add(store, "t", unit(3, seed=38))
        holder = QdrantVectorIndex(store, str(tmp_path / "qdrant"))
        try:
            with pytest.raises(StoreError, match="already open") as caught:
                QdrantVectorIndex(store, str(tmp_path / "qdrant"))
            one_sentence(str(caught.value))
            assert "server" in str(caught.value)
        finally:
            holder.close()
        again = QdrantVectorIndex(store, str(tmp_path / "qdrant"))  # released by close()
        assert again.ids("t")
        again.close()
        with pytest.raises(StoreError, match="closed"):
            again.search("t", unit(1, seed=39)[0], 1)


def test_qdrant_uploads_only_appended_rows_and_creates_nothing_before_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("qdrant_client")
    from hopmem.memory.vectors.qdrant import QdrantVectorIndex

    with MemoryStore(tmp_path / "store.sqlite") as store:
        index = QdrantVectorIndex(store, ":memory:", batch_size=7, progress_every=20)
        try:
            assert index.search("t", unit(1, seed=40)[0], 3) == []
            assert index.client.get_collections().collections == []  # no vectors, nothing created
            vectors = unit(45, seed=41)
            with caplog.at_level(logging.INFO, logger="hopmem.memory.vectors.qdrant"):
                ids = add(store, "t", vectors)
                assert_hits(index.search("t", vectors[1], 3), brute(ids, vectors, vectors[1], 3))
            assert any("uploaded" in r.getMessage() for r in caplog.records)  # progress of a big upload
            assert index.collection_name == f"hopmem_{DIM}"

            reconciles: list[str] = []
            original = store.vector_ids

            def spy(tenant: str) -> set[int]:
                reconciles.append(tenant)
                return original(tenant)

            monkeypatch.setattr(store, "vector_ids", spy)
            more = unit(9, seed=42)
            more_ids = add(store, "t", more, prefix="more")
            all_ids, all_vectors = np.concatenate([ids, more_ids]), np.vstack([vectors, more])
            assert_hits(index.search("t", more[0], 5), brute(all_ids, all_vectors, more[0], 5))
            assert reconciles == []  # appends alone are uploaded without a reconcile
            assert len(qdrant_points(index, "t")) == len(all_ids)
        finally:
            index.close()


def test_a_local_search_without_the_tenant_filter_still_returns_only_the_tenants_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local shortcut (no tenant filter while the collection looks like one tenant's) checks every hit."""
    pytest.importorskip("qdrant_client")
    from qdrant_client.http import models

    from hopmem.memory.vectors.qdrant import QdrantVectorIndex

    with MemoryStore(tmp_path / "store.sqlite") as store:
        vectors = unit(10, seed=43)
        ids = add(store, "t", vectors)
        index = QdrantVectorIndex(store, ":memory:")
        try:
            assert not index.tenant_filter
            filters: list[object] = []
            query_points = index.client.query_points

            def spy(*args: Any, **kwargs: Any) -> Any:
                filters.append(kwargs.get("query_filter"))
                return query_points(*args, **kwargs)

            monkeypatch.setattr(index.client, "query_points", spy)
            probe = unit(1, seed=44)[0]
            assert_hits(index.search("t", probe, 5), brute(ids, vectors, probe, 5))
            assert filters == [None]  # one tenant only: searched without the filter
            name = index.collection_name
            assert name is not None
            # Behind the index's back: one of t's points swapped for a point of "x" (the count stays the same).
            index.client.delete(name, points_selector=models.PointIdsList(points=[int(ids[9])]), wait=True)
            index.client.upsert(
                name, points=[models.PointStruct(id=5_000, vector=probe.tolist(), payload={"tenant": "x"})], wait=True
            )
            filters.clear()
            hits = index.search("t", probe, 5)
            assert 5_000 not in {h.memory_id for h in hits}
            assert_hits(hits, brute(ids[:9], vectors[:9], probe, 5))
            assert filters[0] is None and filters[1] is not None  # x's point was caught, then the filter ran
            # With the filter forced on, the same answer.
            index.tenant_filter = True
            assert_hits(index.search("t", probe, 5), brute(ids[:9], vectors[:9], probe, 5))
        finally:
            index.close()


def test_qdrant_errors_are_one_sentence_store_and_config_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_sentence: Callable[[str], None]
) -> None:
    pytest.importorskip("qdrant_client")
    from hopmem.memory.errors import ConfigError
    from hopmem.memory.vectors.qdrant import QdrantVectorIndex

    with MemoryStore(tmp_path / "store.sqlite") as store:
        add(store, "t", unit(3, seed=45))
        # A server that is not there (nothing listens on the discard port). The client's version check would warn
        # from a thread of its own, into whichever test runs then: skip it.
        monkeypatch.setattr(
            "qdrant_client.qdrant_remote.QdrantRemote._check_compatibility", staticmethod(lambda *a, **k: None)
        )
        with pytest.raises(StoreError, match="reachable") as unreachable:
            QdrantVectorIndex(store, "http://127.0.0.1:9")
        one_sentence(str(unreachable.value))
        # A location that is a file, not a folder.
        (tmp_path / "a-file").write_text("")
        with pytest.raises(StoreError) as not_a_folder:
            QdrantVectorIndex(store, str(tmp_path / "a-file"))
        one_sentence(str(not_a_folder.value))
        # qdrant-client missing.
        monkeypatch.setitem(sys.modules, "qdrant_client", None)
        with pytest.raises(ConfigError, match=r"hopmem\[qdrant\]") as missing:
            QdrantVectorIndex(store, ":memory:")
        one_sentence(str(missing.value))
