"""Bad input and bad files: each gives a one-sentence hopmem error, and nothing already stored is lost.

The store is seeded with fake unit vectors recorded under the real embedder's name, so that no model is needed:
every call here must fail before it embeds anything.
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hopmem.memory.db import connect, write_transaction
from hopmem.memory.engine import MemoryEngine
from hopmem.memory.errors import HopmemError, InputError, StoreError
from hopmem.memory.records import MemoryInput
from hopmem.memory.store import MemoryStore
from hopmem.settings import Settings, get_settings
from tests.memory.engines import open_engine

REAL = ("all-MiniLM-L6-v2", 384)
MAX_CHARS = 200
SEED = ["The harbour master opens the gate at six.", "Tide tables are printed every Sunday."]


def _unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _seed(path: Path, embedder: tuple[str, int] = REAL) -> list[int]:
    with MemoryStore(path) as store:
        items = [MemoryInput(text, tags=("sea",), metadata={"n": i}) for i, text in enumerate(SEED)]
        return [r.id for r in store.add_memories("default", items, _unit(len(items), embedder[1]), embedder=embedder)]


def _snapshot(path: Path) -> list[tuple[Any, ...]]:
    """Everything a user stored, read with plain sqlite3 (not through the code under test)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT m.id, m.tenant, m.title, m.content, m.tags, m.metadata, m.importance, m.provenance, e.vector"
            " FROM memories m LEFT JOIN embeddings e ON e.memory_id = m.id ORDER BY m.id"
        ).fetchall()
        return [*rows, ("fts", conn.execute("SELECT count(*) FROM memories_fts_docsize").fetchone()[0])]
    finally:
        conn.close()


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return get_settings(data_dir=tmp_path / "data", max_memory_chars=MAX_CHARS, sqlite_busy_timeout_ms=200)


@pytest.fixture()
def memory(settings: Settings) -> Iterator[MemoryEngine]:
    _seed(settings.store_path)
    with open_engine(settings) as opened:
        yield opened


def _expect(
    error: type[HopmemError], call: Callable[[], object], one_sentence: Callable[[str], None], *words: str
) -> str:
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    one_sentence(message)
    for word in words:
        assert word in message, (word, message)
    return message


# ---- bad input --------------------------------------------------------------------------------------------------

BAD_ADDS: list[tuple[str, dict[str, Any], str]] = [
    ("oversized", {"content": "x" * (MAX_CHARS + 1)}, "over the limit"),
    ("empty", {"content": "  \n "}, "empty"),
    ("not text", {"content": b"bytes"}, "must be a string"),
    ("NUL", {"content": "a\x00b"}, "NUL"),
    ("metadata NaN", {"metadata": {"score": math.nan}}, "NaN"),
    ("metadata infinity", {"metadata": {"score": math.inf}}, "NaN or infinity"),
    ("metadata list", {"metadata": ["a", "b"]}, "dict"),
    ("metadata string", {"metadata": '{"a": 1}'}, "dict"),
    ("metadata int keys", {"metadata": {1: "a"}}, "keys must be strings"),
    ("metadata set value", {"metadata": {"a": {1, 2}}}, "JSON-serialisable"),
    ("metadata object value", {"metadata": {"a": object()}}, "JSON-serialisable"),
    ("empty tag", {"tags": ["ok", ""]}, "non-empty string"),
    ("blank tag", {"tags": ["   "]}, "non-empty string"),
    ("int tag", {"tags": ["ok", 3]}, "non-empty string"),
    ("long tag", {"tags": ["t" * 101]}, "over 100"),
    ("too many tags", {"tags": [f"t{i}" for i in range(65)]}, "at most 64"),
    ("tags not a list", {"tags": 5}, "list of strings"),
    ("long title", {"title": "t" * 1001}, "over the limit"),
    ("source class document", {"source_class": "document"}, "ingest"),
    ("unknown source class", {"source_class": "rumour"}, "Unknown source class"),
    ("importance above", {"importance": 1.5}, "between 0 and 1"),
    ("importance below", {"importance": -0.1}, "between 0 and 1"),
    ("importance NaN", {"importance": math.nan}, "between 0 and 1"),
    ("importance text", {"importance": "high"}, "between 0 and 1"),
    ("importance bool", {"importance": True}, "between 0 and 1"),
    ("empty agent", {"agent": " "}, "agent id"),
]


@pytest.mark.parametrize(("fields", "words"), [(f, w) for _, f, w in BAD_ADDS], ids=[n for n, _, _ in BAD_ADDS])
def test_bad_add_is_refused_and_changes_nothing(
    memory: MemoryEngine, settings: Settings, one_sentence: Callable[[str], None], fields: dict[str, Any], words: str
) -> None:
    before = _snapshot(settings.store_path)
    call = {"content": "A perfectly good memory.", **fields}
    content = call.pop("content")
    _expect(InputError, lambda: memory.add(content, **call), one_sentence, words)
    # the same item inside add_many fails the whole call, naming its position
    mapping = {"content": content, **call}
    message = _expect(InputError, lambda: memory.add_many(["fine text", mapping], progress=False), one_sentence)
    assert message.startswith("Item 1 of add_many is invalid")
    assert memory._embedder is None, "the embedder was loaded: bad input got past validation"
    assert _snapshot(settings.store_path) == before


BAD_UPDATES: list[tuple[str, dict[str, Any], str]] = [
    ("oversized", {"content": "y" * (MAX_CHARS + 1)}, "over the limit"),
    ("empty content", {"content": ""}, "empty"),
    ("metadata NaN", {"metadata": {"x": math.nan}}, "NaN"),
    ("metadata set", {"metadata": {"x": {1}}}, "JSON-serialisable"),
    ("bad tags", {"tags": [None]}, "non-empty string"),
    ("importance", {"importance": 3}, "between 0 and 1"),
    ("nothing", {"reason": "why not"}, "Nothing to update"),
    ("long reason", {"importance": 0.3, "reason": "r" * 1001}, "reason"),
]


@pytest.mark.parametrize(("fields", "words"), [(f, w) for _, f, w in BAD_UPDATES], ids=[n for n, _, _ in BAD_UPDATES])
def test_bad_update_is_refused_and_changes_nothing(
    memory: MemoryEngine, settings: Settings, one_sentence: Callable[[str], None], fields: dict[str, Any], words: str
) -> None:
    before = _snapshot(settings.store_path)
    _expect(InputError, lambda: memory.update(1, **fields), one_sentence, words)
    assert _snapshot(settings.store_path) == before


BAD_IDS: list[Any] = ["abc", 1.5, None, True, -3, 0, [1], "", "1e3"]


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=repr)
def test_non_integer_ids_are_refused_everywhere(
    memory: MemoryEngine, settings: Settings, one_sentence: Callable[[str], None], bad_id: Any
) -> None:
    before = _snapshot(settings.store_path)
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: memory.get(bad_id),
        "get_many": lambda: memory.get_many([1, bad_id]),
        "update": lambda: memory.update(bad_id, importance=0.2),
        "feedback": lambda: memory.feedback(bad_id, "up"),
        "erase": lambda: memory.erase([1, bad_id]),
    }
    for name, call in calls.items():
        message = _expect(InputError, call, one_sentence)
        assert "positive integer" in message, (name, message)
    assert _snapshot(settings.store_path) == before
    assert not settings.behaviour_path.exists() or memory.stats()["feedback"] == 0


def test_unknown_ids(memory: MemoryEngine, settings: Settings, one_sentence: Callable[[str], None]) -> None:
    before = _snapshot(settings.store_path)
    _expect(InputError, lambda: memory.get(999), one_sentence, "no memory 999")
    _expect(InputError, lambda: memory.update(999, content="new text"), one_sentence, "no memory 999")
    _expect(InputError, lambda: memory.feedback(999, "up"), one_sentence, "no memory 999")
    assert memory.get_many([999, 1]) == memory.get_many([1])
    assert memory.get("1").id == 1  # a numeric string is an id
    report = memory.erase([999])  # erasing what is not there is not an error, and erases nothing
    assert (report.memories, report.ids) == (0, [])
    _expect(InputError, lambda: memory.erase(), one_sentence, "Say what to erase")
    _expect(InputError, lambda: memory.erase([1], everything=True), one_sentence, "no other selector")
    _expect(InputError, lambda: memory.feedback(1, "meh"), one_sentence, "Unknown feedback")
    assert _snapshot(settings.store_path) == before


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"query": "  "}, "empty"),
        ({"query": "tide", "k": 0}, "k must be"),
        ({"query": "tide", "k": 1001}, "k must be"),
        ({"query": "tide", "k": True}, "k must be"),
        ({"query": "tide", "since": "yesterday"}, "Unix time"),
        ({"query": "tide", "until": math.nan}, "Unix time"),
        ({"query": "tide", "source_class": "rumour"}, "Unknown source class"),
        ({"query": "tide", "tags": [""]}, "non-empty string"),
    ],
)
def test_bad_search_input_is_refused(
    memory: MemoryEngine, one_sentence: Callable[[str], None], kwargs: dict[str, Any], words: str
) -> None:
    query = kwargs.pop("query")
    _expect(InputError, lambda: memory.search(query, mode="lexical", **kwargs), one_sentence, words)
    assert [r.id for r in memory.search("tide", mode="lexical")] == [2]


# ---- bad files --------------------------------------------------------------------------------------------------


def _make_read_only(path: Path, folder_too: bool) -> Callable[[], None]:
    """Make ``path`` (and its folder) unwritable; returns the undo. Root ignores chmod, so it uses chattr +i."""
    targets = [path, path.parent] if folder_too else [path]
    if os.geteuid() != 0:
        modes = [(t, t.stat().st_mode) for t in targets]
        for target in targets:
            target.chmod(0o555 if target.is_dir() else 0o444)

        def restore_modes() -> None:
            for target, mode in reversed(modes):
                target.chmod(mode)

        return restore_modes
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root, where chmod does not stop writes, and chattr is not installed")
    done: list[Path] = []

    def restore_flags() -> None:
        for target in reversed(done):
            subprocess.run([chattr, "-i", str(target)], check=True)

    for target in targets:
        result = subprocess.run([chattr, "+i", str(target)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            restore_flags()
            pytest.skip(f"running as root, where chmod does not stop writes, and chattr +i fails: {result.stderr}")
        done.append(target)
    return restore_flags


def _write_calls(memory: MemoryEngine) -> dict[str, Callable[[], object]]:
    return {
        "update": lambda: memory.update(1, importance=0.9, reason="bump"),
        "erase": lambda: memory.erase([1]),
        "add_memories": lambda: memory.store.add_memories(
            "default", [MemoryInput("a new memory")], _unit(1, REAL[1], seed=5), embedder=REAL
        ),
    }


@pytest.mark.parametrize("folder_too", [False, True], ids=["file", "file and folder"])
def test_read_only_store_gives_a_store_error_and_keeps_the_data(
    settings: Settings, one_sentence: Callable[[str], None], folder_too: bool
) -> None:
    _seed(settings.store_path)
    before = _snapshot(settings.store_path)
    undo = _make_read_only(settings.store_path, folder_too)
    try:
        try:
            memory = open_engine(settings)
        except StoreError as exc:  # refusing to open a store it cannot write is fine too
            one_sentence(str(exc))
        else:
            with memory:
                assert memory.get(2).content == SEED[1]  # reading still works
                for call in _write_calls(memory).values():
                    _expect(StoreError, call, one_sentence)
    finally:
        undo()
    assert _snapshot(settings.store_path) == before


def test_write_on_a_read_only_connection_gives_a_store_error(
    settings: Settings, one_sentence: Callable[[str], None]
) -> None:
    _seed(settings.store_path)
    before = _snapshot(settings.store_path)
    conn = connect(settings.store_path, readonly=True)
    try:
        with pytest.raises(StoreError) as caught, write_transaction(conn) as tx:
            tx.execute("DELETE FROM memories")
        one_sentence(str(caught.value))
        assert "read" in str(caught.value)
    finally:
        conn.close()
    assert _snapshot(settings.store_path) == before


def test_locked_store_gives_a_store_error_after_the_busy_timeout(
    memory: MemoryEngine, settings: Settings, one_sentence: Callable[[str], None]
) -> None:
    before = _snapshot(settings.store_path)
    holder = sqlite3.connect(settings.store_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        for name, call in _write_calls(memory).items():
            start = time.monotonic()
            message = _expect(StoreError, call, one_sentence, "locked")
            waited = time.monotonic() - start
            assert 0.15 <= waited < 5, (name, waited)  # it waited for the 200 ms busy timeout, not forever
            assert str(settings.store_path) in message
        # reads go on while another connection writes (WAL)
        assert [r.content for r in memory.export()] == SEED
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _snapshot(settings.store_path) == before
    # once the lock is gone, the same write goes through
    assert memory.update(1, importance=0.9).importance == 0.9


@pytest.mark.parametrize(
    "garbage",
    [b"this is not a database at all " * 300, b"SQLite format 3\x00" + bytes(range(256)) * 40, os.urandom(8192)],
    ids=["text", "bad header", "random"],
)
def test_corrupt_store_gives_a_store_error_and_is_left_as_it_is(
    settings: Settings, one_sentence: Callable[[str], None], garbage: bytes
) -> None:
    path = settings.store_path
    path.parent.mkdir(parents=True)
    path.write_bytes(garbage)
    message = _expect(StoreError, lambda: open_engine(settings), one_sentence, str(path))
    assert "corrupt" in message or "not a valid" in message
    _expect(StoreError, lambda: MemoryStore(path), one_sentence)
    assert path.read_bytes() == garbage  # hopmem did not overwrite what the user has
    assert sorted(p.name for p in path.parent.iterdir()) == ["hopmem.sqlite"]


def test_corrupt_behaviour_file_does_not_touch_the_store(
    memory: MemoryEngine, settings: Settings, one_sentence: Callable[[str], None]
) -> None:
    before = _snapshot(settings.store_path)
    settings.behaviour_path.write_bytes(b"garbage " * 1000)
    _expect(StoreError, lambda: memory.feedback(1, "up"), one_sentence, "behaviour.sqlite")
    assert settings.behaviour_path.read_bytes() == b"garbage " * 1000
    assert _snapshot(settings.store_path) == before
    assert memory.get(1).content == SEED[0]


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(
            ("other-model", 16),
        ),
        pytest.param(
            ("other-model", REAL[1]),
        ),
    ],
    ids=["other dim", "same dim"],
)
def test_dense_search_on_a_store_of_another_embedder_gives_a_store_error(
    settings: Settings, one_sentence: Callable[[str], None], stored: tuple[str, int]
) -> None:
    _seed(settings.store_path, embedder=stored)
    before = _snapshot(settings.store_path)
    with open_engine(settings) as memory:
        assert [r.id for r in memory.search("tide tables", mode="lexical")] == [2]  # lexical needs no vectors
        _expect(StoreError, lambda: memory.add("One more note."), one_sentence, "other-model")
        for mode in ("dense", "hybrid"):
            _expect(StoreError, lambda m=mode: memory.search("tide tables", mode=m), one_sentence, "other-model")
    assert _snapshot(settings.store_path) == before
