"""Crash safety: a writer killed with SIGKILL mid-way leaves a consistent store that holds every committed batch.

A real writer process appends memories in many batches (one transaction each) and reports each committed batch on
stdout; the test kills it while it is still writing, reopens the file and checks rows, FTS, embeddings and the exact
vector index against each other and against what was reported.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from hopmem.memory.records import MemoryInput
from hopmem.memory.store import MemoryStore
from hopmem.memory.vectors.exact import ExactVectorIndex

TENANT = "crash"
BATCH = 40
DIM = 16
FAKE = ("fake", DIM)
TOKEN = re.compile(r"\bmk\d{6}x\d{3}q\b")

WRITER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from hopmem.memory.records import MemoryInput
    from hopmem.memory.store import MemoryStore

    path, tenant, batch, dim = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(0)
    store = MemoryStore(path)
    print("ready", flush=True)
    for number in range(1_000_000):
        items = [
            MemoryInput(
                content=f"crash test memory mk{number:06d}x{i:03d}q " + "padding words " * 20,
                tags=("crash", f"b{number}"),
                metadata={"batch": number, "i": i},
                agent_id="writer",
            )
            for i in range(batch)
        ]
        vectors = rng.normal(size=(batch, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        results = store.add_memories(tenant, items, vectors, embedder=("fake", dim))
        print(json.dumps([r.id for r in results]), flush=True)
    """
)


def _start_writer(tmp_path: Path, db: Path) -> subprocess.Popen[str]:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    return subprocess.Popen(
        [sys.executable, str(script), str(db), TENANT, str(BATCH), str(DIM)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_after(proc: subprocess.Popen[str], batches: int, delay: float) -> set[int]:
    """Read ``batches`` committed batches, wait ``delay``, SIGKILL the writer; return every id it reported."""
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    committed: set[int] = set()
    for _ in range(batches):
        line = proc.stdout.readline()
        assert line, f"the writer stopped early: {proc.stderr.read() if proc.stderr else ''}"
        committed.update(json.loads(line))
    time.sleep(delay)
    assert proc.poll() is None, "the writer finished before it was killed; the test proves nothing"
    proc.kill()  # SIGKILL on POSIX: no cleanup, no rollback, no atexit
    proc.wait(timeout=30)
    assert proc.returncode == -9
    # Batches reported between the last read and the kill were committed too.
    for line in proc.stdout.read().splitlines():
        committed.update(json.loads(line))
    return committed


@pytest.mark.parametrize(("batches", "delay"), [(1, 0.0), (4, 0.004), (12, 0.03)])
def test_sigkill_mid_write_leaves_a_consistent_store_with_every_committed_batch(
    tmp_path: Path, batches: int, delay: float
) -> None:
    db = tmp_path / "data" / "hopmem.sqlite"
    proc = _start_writer(tmp_path, db)
    try:
        committed = _kill_after(proc, batches, delay)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert len(committed) >= batches * BATCH

    with MemoryStore(db) as store:
        assert store.integrity_problems() == []
        conn = store.conn
        memory_ids = {int(r[0]) for r in conn.execute("SELECT id FROM memories WHERE tenant = ?", (TENANT,))}
        embedding_ids = {int(r[0]) for r in conn.execute("SELECT memory_id FROM embeddings")}
        fts_rows = conn.execute("SELECT count(*) FROM memories_fts_docsize").fetchone()[0]

        # Everything reported committed survived; nothing half-written is visible: whole batches, ids 1..n.
        assert committed <= memory_ids
        assert len(memory_ids) % BATCH == 0, f"a partial batch survived: {len(memory_ids)} rows"
        assert memory_ids == set(range(1, len(memory_ids) + 1))
        # rows, embeddings, FTS and the exact index agree.
        assert embedding_ids == memory_ids
        assert fts_rows == len(memory_ids)
        assert store.vector_ids(TENANT) == memory_ids
        assert ExactVectorIndex(store).ids(TENANT) == embedding_ids
        stats = store.stats(TENANT)
        assert (stats["memories"], stats["vectors"], stats["agents"]) == (len(memory_ids), len(memory_ids), 1)

        # Each memory is found through the FTS index by its own unique token, and only it.
        for row in conn.execute("SELECT id, content FROM memories"):
            found = TOKEN.search(row["content"])
            assert found is not None
            hits = conn.execute(
                "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ?", (f'"{found.group(0)}"',)
            ).fetchall()
            assert [int(h[0]) for h in hits] == [row["id"]]

        # The store stays writable after the crash, and a new batch lands in step.
        rng = np.random.default_rng(1)
        vectors = rng.normal(size=(2, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        items = [MemoryInput(content="after the crash mk999999x000q"), MemoryInput(content="second one mk999999x001q")]
        results = store.add_memories(TENANT, items, vectors, embedder=FAKE)
        assert [r.status for r in results] == ["added", "added"]
        assert store.integrity_problems() == []
        assert ExactVectorIndex(store).ids(TENANT) == memory_ids | {r.id for r in results}
        assert [h.memory_id for h in store.search_lexical(TENANT, "mk999999x001q", 5)] == [results[1].id]
