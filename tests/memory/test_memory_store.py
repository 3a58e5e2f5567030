"""MemoryStore: rows, FTS and vectors written in step, replacement, tenant isolation, errors, rollback."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hopmem.memory.errors import InputError, StoreError
from hopmem.memory.records import DocumentInput
from hopmem.memory.store import MemoryStore
from hopmem.memory.vectors.exact import ExactVectorIndex

Vectors = Callable[..., np.ndarray]
MakeDoc = Callable[..., DocumentInput]
FAKE_EMBEDDER = ("test-random", 8)  # the dimension of the conftest's random_vectors


def _lexical_ids(store: MemoryStore, tenant: str, query: str) -> set[int]:
    return {hit.memory_id for hit in store.search_lexical(tenant, query, 100)}


def _all_vector_ids(store: MemoryStore, tenant: str) -> set[int]:
    ids, _ = store.vectors_after(tenant, 0)
    return {int(i) for i in ids}


def test_add_documents_writes_rows_fts_and_vectors_in_step(
    store: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors
) -> None:
    docs = [
        make_doc("a.txt", ["aardvark burrows"], title="Animals"),
        make_doc("b.txt", ["basalt columns", "obsidian glass"], title="Rocks"),
        make_doc("c.txt", ["cumulus clouds", "cirrus wisps", "stratus layers"], title="Weather"),
    ]
    vectors = [random_vectors(len(d.chunks), seed=i) for i, d in enumerate(docs)]

    writes = store.add_documents("acme", docs, vectors, embedder=FAKE_EMBEDDER)

    assert [(w.source, w.status, w.n_chunks) for w in writes] == [
        ("a.txt", "added", 1),
        ("b.txt", "added", 2),
        ("c.txt", "added", 3),
    ]
    assert len({w.document_id for w in writes}) == 3
    stats = store.stats("acme")
    assert (stats["documents"], stats["memories"], stats["vectors"]) == (3, 6, 6)
    assert stats["embedder"] == FAKE_EMBEDDER[0]
    assert store.embedder_info() == FAKE_EMBEDDER
    assert store.integrity_problems() == []

    ids, matrix = store.vectors_after("acme", 0)
    records = store.get("acme", [int(i) for i in ids])
    assert [(r.source, r.chunk_index, r.content) for r in records] == [
        (doc.source, index, chunk) for doc in docs for index, chunk in enumerate(doc.chunks)
    ]
    assert all(r.source_class == "document" and r.tenant == "acme" for r in records)
    assert [r.title for r in records] == ["Animals", "Rocks", "Rocks", "Weather", "Weather", "Weather"]
    np.testing.assert_array_equal(matrix, np.vstack(vectors))

    by_content = {r.content: r.id for r in records}
    assert _lexical_ids(store, "acme", "obsidian") == {by_content["obsidian glass"]}
    assert _lexical_ids(store, "acme", "wisps") == {by_content["cirrus wisps"]}
    assert _lexical_ids(store, "acme", "rocks") == {
        by_content["basalt columns"],
        by_content["obsidian glass"],
    }
    assert store.document_hash("acme", "b.txt") == docs[1].content_hash
    assert store.document_hash("acme", "zzz.txt") is None


def test_title_outweighs_content_in_bm25(tmp_path: Path, make_doc: MakeDoc, random_vectors: Vectors) -> None:
    with MemoryStore(tmp_path / "w.sqlite", title_weight=10.0) as store:
        docs = [make_doc("body", ["notes about the zeppelin"]), make_doc("head", ["notes"], title="zeppelin")]
        store.add_documents("t", docs, [random_vectors(1), random_vectors(1)], embedder=FAKE_EMBEDDER)
        hits = store.search_lexical("t", "zeppelin", 10)
        assert [store.get("t", [h.memory_id])[0].source for h in hits] == ["head", "body"]
        assert hits[0].score > hits[1].score


def test_get_keeps_the_order_of_ids_and_drops_unknown_ones(
    store: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors
) -> None:
    store.add_documents("t", [make_doc("s", ["one", "two", "three"])], [random_vectors(3)], embedder=FAKE_EMBEDDER)
    first, second, third = sorted(_all_vector_ids(store, "t"))
    records = store.get("t", [third, first, third, 10_000, second])
    assert [r.content for r in records] == ["three", "one", "two"]
    assert store.get("t", []) == []


def test_same_source_and_hash_is_unchanged(store: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors) -> None:
    doc = make_doc("notes.md", ["first chunk", "second chunk"])
    [added] = store.add_documents("t", [doc], [random_vectors(2)], embedder=FAKE_EMBEDDER)
    before = (store.stats("t"), store.vector_state("t"), _all_vector_ids(store, "t"))

    [again] = store.add_documents("t", [doc], [random_vectors(2, seed=5)], embedder=FAKE_EMBEDDER)

    assert (again.status, again.document_id, again.n_chunks) == ("unchanged", added.document_id, 0)
    assert (store.stats("t"), store.vector_state("t"), _all_vector_ids(store, "t")) == before
    _, matrix = store.vectors_after("t", 0)
    np.testing.assert_array_equal(matrix, random_vectors(2))  # the first vectors were kept


def test_changed_content_replaces_the_old_chunks_everywhere(
    store: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors
) -> None:
    old_vectors = random_vectors(2, seed=1)
    store.add_documents(
        "t",
        [make_doc("doc.txt", ["walrus tusks", "narwhal horn"]), make_doc("keep.txt", ["penguin colony"])],
        [old_vectors, random_vectors(1, seed=2)],
        embedder=FAKE_EMBEDDER,
    )
    old_ids = _lexical_ids(store, "t", "walrus narwhal")
    assert len(old_ids) == 2
    index = ExactVectorIndex(store)
    assert index.search("t", old_vectors[0], 1)[0].memory_id in old_ids
    epoch_before = store.vector_state("t")[0]

    new_vectors = random_vectors(1, seed=3)
    [write] = store.add_documents(
        "t", [make_doc("doc.txt", ["manatee flippers"])], [new_vectors], embedder=FAKE_EMBEDDER
    )

    assert (write.status, write.n_chunks) == ("replaced", 1)
    assert _lexical_ids(store, "t", "walrus narwhal tusks horn") == set()
    [new_id] = _lexical_ids(store, "t", "manatee")
    assert store.get("t", sorted(old_ids)) == []
    stats = store.stats("t")
    assert (stats["documents"], stats["memories"], stats["vectors"]) == (2, 2, 2)
    assert store.vector_state("t")[0] > epoch_before
    assert store.integrity_problems() == []
    hits = index.search("t", old_vectors[0], 10)
    assert {h.memory_id for h in hits} == _all_vector_ids(store, "t")
    assert not old_ids & {h.memory_id for h in hits}
    assert index.search("t", new_vectors[0], 1)[0].memory_id == new_id
    assert store.get("t", [new_id])[0].source == "doc.txt"


def test_tenants_are_isolated(store: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors) -> None:
    shared = random_vectors(1, seed=9)
    store.add_documents("alice", [make_doc("a", ["alice secret recipe"])], [shared], embedder=FAKE_EMBEDDER)
    store.add_documents(
        "bob",
        [make_doc("a", ["bob secret plan"]), make_doc("b", ["bob diary"])],
        [shared, shared],
        embedder=FAKE_EMBEDDER,
    )
    alice_ids = _all_vector_ids(store, "alice")
    bob_ids = _all_vector_ids(store, "bob")
    assert len(alice_ids) == 1 and len(bob_ids) == 2 and not alice_ids & bob_ids

    # Positive control: each tenant sees its own rows.
    assert _lexical_ids(store, "alice", "secret") == alice_ids
    assert [r.content for r in store.get("alice", sorted(alice_ids))] == ["alice secret recipe"]
    # ... and nothing of the other tenant, even when asked for its ids or words.
    [bob_secret] = [r.id for r in store.get("bob", sorted(bob_ids)) if r.content == "bob secret plan"]
    assert _lexical_ids(store, "bob", "secret alice recipe") == {bob_secret}
    assert _lexical_ids(store, "alice", "bob diary plan") == set()
    assert store.get("bob", sorted(alice_ids)) == []
    assert store.get("alice", sorted(bob_ids)) == []
    assert store.get("carol", sorted(alice_ids | bob_ids)) == []

    index = ExactVectorIndex(store)
    assert {h.memory_id for h in index.search("alice", shared[0], 10)} == alice_ids
    assert {h.memory_id for h in index.search("bob", shared[0], 10)} == bob_ids
    assert index.search("carol", shared[0], 10) == []

    assert (store.stats("alice")["documents"], store.stats("alice")["memories"]) == (1, 1)
    assert (store.stats("bob")["documents"], store.stats("bob")["vectors"]) == (2, 2)
    assert (store.stats("carol")["documents"], store.stats("carol")["vectors"]) == (0, 0)
    assert store.vector_state("carol")[1:] == (0, 0)
    assert store.document_hash("carol", "a") is None
    assert store.document_hash("alice", "a") != store.document_hash("bob", "a")


BAD_TENANTS: list[Any] = ["", "   ", "\t\n", None, 42, b"alice", ["alice"]]
READS: dict[str, Callable[[MemoryStore, Any], object]] = {
    "get": lambda s, t: s.get(t, [1]),
    "search_lexical": lambda s, t: s.search_lexical(t, "anything", 5),
    "vectors_after": lambda s, t: s.vectors_after(t, 0),
    "vector_state": lambda s, t: s.vector_state(t),
    "stats": lambda s, t: s.stats(t),
    "document_hash": lambda s, t: s.document_hash(t, "a"),
    "index.search": lambda s, t: ExactVectorIndex(s).search(t, np.ones(8, np.float32), 5),
}


@pytest.mark.parametrize("tenant", BAD_TENANTS, ids=repr)
@pytest.mark.parametrize("call", list(READS), ids=str)
def test_a_missing_tenant_is_refused(
    store: MemoryStore,
    make_doc: MakeDoc,
    random_vectors: Vectors,
    one_sentence: Callable[[str], None],
    tenant: Any,
    call: str,
) -> None:
    store.add_documents("real", [make_doc("a", ["anything"])], [random_vectors(1)], embedder=FAKE_EMBEDDER)
    with pytest.raises(InputError) as caught:
        READS[call](store, tenant)
    one_sentence(str(caught.value))


@pytest.mark.parametrize("tenant", BAD_TENANTS, ids=repr)
def test_a_write_without_tenant_is_refused(
    store: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors, tenant: Any
) -> None:
    with pytest.raises(InputError):
        store.add_documents(tenant, [make_doc("a", ["text"])], [random_vectors(1)], embedder=FAKE_EMBEDDER)
    assert store.embedder_info() is None
    assert store.conn.execute("SELECT count(*) FROM memories").fetchone()[0] == 0


def test_a_corrupt_file_raises_store_error(tmp_path: Path, one_sentence: Callable[[str], None]) -> None:
    path = tmp_path / "corrupt.sqlite"
    garbage = random.Random(7).randbytes(16_384)
    path.write_bytes(garbage)

    with pytest.raises(StoreError) as caught:
        MemoryStore(path)

    message = str(caught.value)
    one_sentence(message)
    assert str(path) in message
    assert "corrupt" in message
    assert path.read_bytes() == garbage  # opening it must not overwrite what is there


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to list open files")
def test_a_corrupt_file_is_not_left_open(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.sqlite"
    path.write_bytes(random.Random(8).randbytes(8192))

    def open_handles() -> list[str]:
        fd_dir = Path("/proc/self/fd")
        targets = []
        for fd in fd_dir.iterdir():
            try:
                targets.append(str(fd.readlink()))
            except OSError:  # closed between listing and reading
                continue
        return [t for t in targets if t.startswith(str(path))]

    with pytest.raises(StoreError) as caught:
        MemoryStore(path)
    assert caught.value.__traceback__ is not None  # the error, with its frames, is still alive here
    assert open_handles() == []


def test_a_store_from_a_newer_schema_is_refused(tmp_path: Path, one_sentence: Callable[[str], None]) -> None:
    path = tmp_path / "future.sqlite"
    with MemoryStore(path) as store:
        store.conn.execute("PRAGMA user_version = 999")
    with pytest.raises(StoreError) as caught:
        MemoryStore(path)
    one_sentence(str(caught.value))
    assert "newer" in str(caught.value)


def test_reopening_keeps_the_data(tmp_path: Path, make_doc: MakeDoc, random_vectors: Vectors) -> None:
    path = tmp_path / "s.sqlite"
    with MemoryStore(path) as store:
        store.add_documents("t", [make_doc("a", ["persistent platypus"])], [random_vectors(1)], embedder=FAKE_EMBEDDER)
    with MemoryStore(path) as store:
        assert store.stats("t")["memories"] == 1
        assert len(_lexical_ids(store, "t", "platypus")) == 1
        assert store.embedder_info() == FAKE_EMBEDDER


def test_a_failure_mid_call_rolls_back_the_whole_call(
    store: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors
) -> None:
    store.add_documents("t", [make_doc("old", ["ancient scroll"])], [random_vectors(1)], embedder=FAKE_EMBEDDER)
    before = (store.stats("t"), store.vector_state("t"))
    audit_before = store.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]

    docs = [
        make_doc("first", ["fresh meadow"]),
        make_doc("second", ["broken vectors", "two chunks"]),
        make_doc("third", ["never reached"]),
    ]
    wrong_shape = random_vectors(1)  # the 2nd document has two chunks
    with pytest.raises(ValueError, match="shape"):
        store.add_documents("t", docs, [random_vectors(1), wrong_shape, random_vectors(1)], embedder=FAKE_EMBEDDER)

    assert (store.stats("t"), store.vector_state("t")) == before
    assert store.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == audit_before
    assert _lexical_ids(store, "t", "meadow") == set()
    assert store.document_hash("t", "first") is None
    assert store.integrity_problems() == []
    assert not store.conn.in_transaction
    # The connection is usable afterwards.
    [write] = store.add_documents("t", [docs[0]], [random_vectors(1)], embedder=FAKE_EMBEDDER)
    assert write.status == "added"
    assert len(_lexical_ids(store, "t", "meadow")) == 1


def test_a_failed_first_write_records_no_embedder(
    store: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors
) -> None:
    with pytest.raises(ValueError):
        store.add_documents("t", [make_doc("a", ["x", "y"])], [random_vectors(3)], embedder=FAKE_EMBEDDER)
    assert store.embedder_info() is None
    store.add_documents("t", [make_doc("a", ["x"])], [random_vectors(1, dim=4)], embedder=("other", 4))
    assert store.embedder_info() == ("other", 4)


def test_vectors_of_another_embedder_are_refused(
    store: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors, one_sentence: Callable[[str], None]
) -> None:
    store.add_documents("t", [make_doc("a", ["alpha"])], [random_vectors(1)], embedder=FAKE_EMBEDDER)
    with pytest.raises(StoreError) as caught:
        store.add_documents("t", [make_doc("b", ["beta"])], [random_vectors(1)], embedder=("another", 8))
    one_sentence(str(caught.value))
    assert store.stats("t")["documents"] == 1
    assert store.document_hash("t", "b") is None


def test_a_second_connection_sees_committed_writes(tmp_path: Path, make_doc: MakeDoc, random_vectors: Vectors) -> None:
    path = tmp_path / "shared.sqlite"
    with MemoryStore(path) as first, MemoryStore(path) as second:
        first.add_documents("t", [make_doc("a", ["gecko feet"])], [random_vectors(1)], embedder=FAKE_EMBEDDER)
        assert len(_lexical_ids(second, "t", "gecko")) == 1
        second.add_documents("t", [make_doc("b", ["iguana tail"])], [random_vectors(1)], embedder=FAKE_EMBEDDER)
        assert first.stats("t")["documents"] == 2
        assert first.integrity_problems() == []


def test_integrity_problems_reports_orphan_embeddings(
    store: MemoryStore, make_doc: MakeDoc, random_vectors: Vectors
) -> None:
    store.add_documents("t", [make_doc("a", ["alpha"])], [random_vectors(1)], embedder=FAKE_EMBEDDER)
    assert store.integrity_problems() == []
    store.conn.execute("PRAGMA foreign_keys = OFF")
    store.conn.execute(
        "INSERT INTO embeddings (memory_id, tenant, model, dim, vector) VALUES (9999, 't', 'm', 8, ?)",
        (sqlite3.Binary(random_vectors(1).tobytes()),),
    )
    assert store.integrity_problems() == ["1 embeddings without a memory"]
