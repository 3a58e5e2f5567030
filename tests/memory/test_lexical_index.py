"""The in-process lexical index returns exactly what FTS5's bm25 returns, and stays in step with the SQLite file.

Conformance: real text (Cranfield and HotpotQA passages) in two tenants, real BEIR questions and generated word
lists (hypothesis), with and without filters; the reference is FTS5 itself: ``ORDER BY bm25(...), id`` over the
tenant-filtered join, the exhaustive form of what the ``fts5`` backend computes. Freshness: writes made through
another connection and another process (appends, same-length text updates, erasures, replaced documents) are seen
by the next search, incrementally (no rebuild from FTS5).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hopmem.memory.fts import build_match_query
from hopmem.memory.lexical_index import LexicalIndex
from hopmem.memory.records import DocumentInput, MemoryInput, SearchFilter
from hopmem.memory.sql_filters import filter_sql
from hopmem.memory.store import MemoryStore
from hopmem.settings import get_settings

TENANTS = ("acme", "globex")
AGENTS = ("planner", "scout", None)
TAGS = ("aero", "misc", "wiki")


def _fts5(store: MemoryStore, tenant: str, query: str, k: int, filters: SearchFilter | None = None) -> list[tuple]:
    """FTS5's own answer: (id, score) of the best ``k`` rows of ``tenant``, ties broken by id."""
    match = build_match_query(query)
    if match is None:
        return []
    where, params = filter_sql(filters)
    title_w, content_w = store._bm25_weights
    rows = store.conn.execute(
        "SELECT m.id, bm25(memories_fts, ?, ?) AS bm FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid"
        f" WHERE memories_fts MATCH ? AND m.tenant = ?{where} ORDER BY bm, m.id LIMIT ?",
        (title_w, content_w, match, tenant, *params, k),
    ).fetchall()
    return [(int(r[0]), -float(r[1])) for r in rows]


def _index(index: LexicalIndex, tenant: str, query: str, k: int, filters: SearchFilter | None = None) -> list[tuple]:
    index.refresh()  # builds synchronously the first time (a search alone starts a background build, see below)
    hits = index.search(tenant, query, k, filters=filters)
    assert hits is not None, f"the index declined {query!r}"
    return [(h.memory_id, h.score) for h in hits]


def _passages(shared_data: Path) -> list[dict[str, str]]:
    """The first 700 non-empty passages of Cranfield and of HotpotQA."""
    out: list[dict[str, str]] = []
    for name in ("cranfield", "hotpotqa"):
        kept = 0
        with (shared_data / name / "corpus.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                doc = json.loads(line)
                if doc.get("text", "").strip() and kept < 700:
                    out.append({"title": doc.get("title", ""), "text": doc["text"]})
                    kept += 1
    return out


def _questions(shared_data: Path) -> list[str]:
    out: list[str] = []
    for name in ("cranfield", "hotpotqa"):
        with (shared_data / name / "queries.jsonl").open(encoding="utf-8") as lines:
            out.extend(json.loads(line)["text"] for _, line in zip(range(60), lines, strict=False))
    return out


@pytest.fixture(scope="module")
def corpus_store(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[MemoryStore]:
    """1,400 real passages split over two tenants, with agents, tags and source classes to filter on."""
    path = tmp_path_factory.mktemp("lexical") / "store.sqlite"
    writer = MemoryStore(path, lexical_backend="fts5")
    for tenant_no, tenant in enumerate(TENANTS):
        items = [
            MemoryInput(
                p["text"],
                title=p["title"],
                tags=(TAGS[i % 3],),
                agent_id=AGENTS[i % 3],
                source_class="agent" if i % 4 else "user",
            )
            for i, p in enumerate(_passages(shared_data))
            if i % 2 == tenant_no
        ]
        writer.add_memories(tenant, items, None, embedder=None)
    writer.close()
    with MemoryStore(path) as store:
        yield store


@pytest.fixture(scope="module")
def vocabulary(corpus_store: MemoryStore) -> list[str]:
    rows = corpus_store.conn.execute("SELECT content FROM memories ORDER BY id LIMIT 300").fetchall()
    words = sorted({w.strip(".,;:()'\"") for r in rows for w in str(r[0]).split()} - {""})
    return [w for w in words if "_" not in w]


def test_real_questions_rank_and_score_exactly_as_fts5(corpus_store: MemoryStore, shared_data: Path) -> None:
    index = corpus_store.lexical_index
    questions = _questions(shared_data)
    assert len(questions) == 120
    for tenant in TENANTS:
        for question in questions:
            want = _fts5(corpus_store, tenant, question, 30)
            assert want, question
            assert _index(index, tenant, question, 30) == want, question
    assert index.builds == 1 and index.failed is None


@pytest.mark.parametrize(
    "filters",
    [
        SearchFilter(agent_id="planner"),
        SearchFilter(tags=("wiki",)),
        SearchFilter(source_classes=("user",)),
        SearchFilter(tags=("aero", "misc"), agent_id="scout"),
        SearchFilter(since=0.0, until=1.0),  # nothing passes
    ],
    ids=["agent", "tag", "class", "tags+agent", "empty-range"],
)
def test_filters_mean_what_they_mean_for_fts5(
    corpus_store: MemoryStore, shared_data: Path, filters: SearchFilter
) -> None:
    index = corpus_store.lexical_index
    for question in _questions(shared_data)[::7]:
        for k in (1, 10, 50):
            assert _index(index, "acme", question, k, filters) == _fts5(corpus_store, "acme", question, k, filters)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_queries_agree_with_fts5(
    corpus_store: MemoryStore, vocabulary: list[str], data: st.DataObject
) -> None:
    words = data.draw(
        st.lists(
            st.one_of(
                st.sampled_from(vocabulary),
                st.sampled_from(["the", "of", "AND", "NOT", "near", "Wing", "WINGS", "flows", "flowing"]),
                st.text(alphabet="abcdeéü0123 -'\"*()", min_size=1, max_size=6),
            ),
            min_size=1,
            max_size=10,
        )
    )
    query = " ".join(words)
    k = data.draw(st.sampled_from([1, 5, 30]))
    tenant = data.draw(st.sampled_from(TENANTS))
    assert _index(corpus_store.lexical_index, tenant, query, k) == _fts5(corpus_store, tenant, query, k)


def test_the_first_search_is_answered_by_fts5_while_the_index_builds(corpus_store: MemoryStore) -> None:
    with MemoryStore(corpus_store.path) as store:
        index = store.lexical_index
        assert not index.ready
        first = store.search_lexical("acme", "boundary layer", 10)  # FTS5 answers; the build starts in a thread
        assert index.search("acme", "boundary layer", 10) in (None, first)
        assert index._builder is not None
        index._builder.join(timeout=120)
        assert index.ready and index.builds == 1
        assert index.search("acme", "boundary layer", 10) == first == store.search_lexical("acme", "boundary layer", 10)


def test_a_build_refused_inside_a_transaction_is_started_again(corpus_store: MemoryStore) -> None:
    with MemoryStore(corpus_store.path) as store:
        index = store.lexical_index
        store.conn.execute("BEGIN")
        try:
            assert index.search("acme", "boundary layer", 5) is None
            assert index._builder is not None
            index._builder.join(timeout=120)
            assert not index.ready  # the build declined: the store's connection was inside a transaction
        finally:
            store.conn.execute("ROLLBACK")
        assert index.search("acme", "boundary layer", 5) is None  # starts the build again
        index._builder.join(timeout=120)
        assert index.ready and index.search("acme", "boundary layer", 5)


def test_closing_the_store_stops_a_build_in_progress(corpus_store: MemoryStore) -> None:
    store = MemoryStore(corpus_store.path)
    index = store.lexical_index
    index.build_in_background()
    store.close()  # interrupts the build's query and joins the thread
    assert index._builder is not None and not index._builder.is_alive()
    assert not index.ready


def test_closing_while_the_build_reads_its_marker_raises_nothing_in_the_thread(
    corpus_store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The build's first read is made to run until interrupted (an endless query on the index's own connection,
    # started inside the marker read), so close() interrupts exactly that read, as it can on a slow disk.
    store = MemoryStore(corpus_store.path)
    index = store.lexical_index
    running = threading.Event()
    index.conn.create_function("running", 0, lambda: running.set() or 1)
    read_marker = index._read_marker

    def slow_read_marker() -> tuple[bytes | None, int]:
        index.conn.execute(
            "WITH RECURSIVE c(x) AS (SELECT running() UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
        ).fetchone()
        return read_marker()

    monkeypatch.setattr(index, "_read_marker", slow_read_marker)
    raised: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: raised.append(args.exc_value))
    index.build_in_background()
    assert running.wait(timeout=60)
    store.close()  # interrupts the read and joins the thread
    assert raised == []  # the interruption is the close, not an error of the thread
    assert index._builder is not None and not index._builder.is_alive()
    assert not index.ready and index.failed is None


def test_store_search_uses_the_index_and_falls_back_to_fts5_for_phrases(corpus_store: MemoryStore) -> None:
    index = corpus_store.lexical_index
    index.refresh()
    assert index.search("acme", "boundary layer", 5) is not None
    # "shock_wave" is one query word that FTS5 reads as the phrase "shock wave": the index declines it...
    assert index.search("acme", "shock_wave pressure", 5) is None
    # ...and the store's search answers through FTS5, as the fts5 backend does.
    got = [(h.memory_id, h.score) for h in corpus_store.search_lexical("acme", "shock_wave pressure", 5)]
    with MemoryStore(corpus_store.path, lexical_backend="fts5") as reference:
        assert got == [(h.memory_id, h.score) for h in reference.search_lexical("acme", "shock_wave pressure", 5)]
        assert reference._lexical is None  # the fts5 backend never builds the index
    assert got


def test_unknown_tenant_and_wordless_queries_find_nothing(corpus_store: MemoryStore) -> None:
    index = corpus_store.lexical_index
    index.refresh()
    assert index.search("nobody", "boundary layer", 5) == []
    assert index.search("acme", "?! ...", 5) == []
    assert index.search("acme", "zzqxunknownword", 5) == []


def test_inside_a_transaction_fts5_answers(corpus_store: MemoryStore) -> None:
    """Uncommitted writes must not enter the derived index; FTS5 sees the transaction's own view instead."""
    corpus_store.lexical_index.refresh()
    corpus_store.conn.execute("BEGIN")
    try:
        assert corpus_store.lexical_index.search("acme", "boundary layer", 5) is None
        assert corpus_store.search_lexical("acme", "boundary layer", 5)
    finally:
        corpus_store.conn.execute("ROLLBACK")


# ---- freshness ----------------------------------------------------------------------------------------------


@pytest.fixture()
def pair(tmp_path: Path) -> Iterator[tuple[MemoryStore, MemoryStore]]:
    """A reader with the index and a writer on another connection to the same file."""
    path = tmp_path / "store.sqlite"
    writer = MemoryStore(path, lexical_backend="fts5")
    writer.add_memories(
        "acme",
        [
            MemoryInput("The wind tunnel measured lift on the swept wing.", title="tunnel"),
            MemoryInput("Boundary layer transition moved aft at high Reynolds number.", title="transition"),
            MemoryInput("A quiet note about the garden shed and its blue pot."),
        ],
        None,
        embedder=None,
    )
    reader = MemoryStore(path)
    yield reader, writer
    reader.close()
    writer.close()


def _agrees(store: MemoryStore, query: str, k: int = 10) -> list[int]:
    got = _index(store.lexical_index, "acme", query, k)
    assert got == _fts5(store, "acme", query, k), query
    return [i for i, _ in got]


def test_writes_through_another_connection_are_seen_incrementally(pair: tuple[MemoryStore, MemoryStore]) -> None:
    reader, writer = pair
    index = reader.lexical_index
    assert _agrees(reader, "swept wing lift")
    assert index.builds == 1

    (added,) = writer.add_memories(
        "acme", [MemoryInput("Flutter of the swept wing was suppressed.")], None, embedder=None
    )
    assert added.id in _agrees(reader, "flutter suppressed")

    # an update that keeps every column's token count: only the audit log tells the index which row changed
    target = _agrees(reader, "garden shed")[0]
    writer.update_memory("acme", target, {"content": "A quiet note about the orchard gate and its red bar."}, None,
                         embedder=None, agent_id=None)  # fmt: skip
    assert _agrees(reader, "garden shed") == []
    assert _agrees(reader, "orchard gate") == [target]

    writer.erase_rows("acme", [added.id], reason="ids")
    assert added.id not in _agrees(reader, "flutter suppressed swept")
    assert "flutter" not in index.terms() and "suppress" not in index.terms()

    assert index.builds == 1  # every change above was applied incrementally, no rebuild from FTS5
    assert index.ids("acme") == {int(r[0]) for r in reader.conn.execute("SELECT id FROM memories")}


def test_a_replaced_document_is_seen(pair: tuple[MemoryStore, MemoryStore]) -> None:
    reader, writer = pair

    def doc(text: str) -> DocumentInput:
        return DocumentInput("notes.txt", "notes", str(hash(text)), [text, "second chunk about rotor blades"])

    writer.add_documents("acme", [doc("Launch window opens in the spring.")], None, embedder=None)
    assert len(_agrees(reader, "launch window rotor")) == 2
    writer.add_documents("acme", [doc("Landing gear retracts after takeoff.")], None, embedder=None)
    assert _agrees(reader, "launch window") == []
    assert len(_agrees(reader, "landing gear rotor")) == 2
    assert reader.lexical_index.builds == 1


def test_a_write_by_another_process_is_seen(pair: tuple[MemoryStore, MemoryStore]) -> None:
    reader, _ = pair
    assert _agrees(reader, "hypersonic inlet") == []
    script = (
        "import sys\n"
        "from hopmem.memory.records import MemoryInput\n"
        "from hopmem.memory.store import MemoryStore\n"
        "with MemoryStore(sys.argv[1]) as s:\n"
        "    s.add_memories('acme', [MemoryInput('A hypersonic inlet started cleanly.')], None, embedder=None)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(reader.path)], check=True, timeout=120)
    assert len(_agrees(reader, "hypersonic inlet")) == 1
    assert reader.lexical_index.builds == 1


def test_many_appends_fold_into_the_base_postings(pair: tuple[MemoryStore, MemoryStore]) -> None:
    reader, writer = pair
    index = reader.lexical_index
    _agrees(reader, "wing")
    for batch in range(6):
        writer.add_memories(
            "acme",
            [MemoryInput(f"Batch {batch} note {i} on wing panel {i % 7} and vortex {i % 5}.") for i in range(3000)],
            None,
            embedder=None,
        )
        _agrees(reader, "wing panel vortex 3", k=50)
    assert not index._delta_triples or sum(len(t[0]) for t in index._delta_triples) <= 50_000
    assert len(index._base) > 50_000  # the appended postings were merged at least once
    assert index.builds == 1


def test_settings_choose_the_backend(tmp_path: Path) -> None:
    from tests.memory.engines import open_engine

    with open_engine(get_settings(data_dir=tmp_path / "a", lexical_backend="fts5", llm_backend="none")) as memory:
        assert memory.store.lexical_backend == "fts5"
    with open_engine(get_settings(data_dir=tmp_path / "b", llm_backend="none")) as memory:
        assert memory.store.lexical_backend == "index"
