"""Several processes opening one new store file at once all get a migrated store (server workers start together)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from hopmem.memory.schema import SCHEMA_VERSION
from hopmem.memory.store import MemoryStore


def _open(path: str, barrier: object, results: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    try:
        with MemoryStore(Path(path)) as store:
            version = int(store.conn.execute("PRAGMA user_version").fetchone()[0])
        results.put(("ok", version))  # type: ignore[attr-defined]
    except Exception as exc:  # the report is the assertion below
        results.put(("error", str(exc)))  # type: ignore[attr-defined]


def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    context = mp.get_context("spawn")
    for attempt in range(
        5
    ):  # a race: several rounds on fresh files (8 processes lost it 3 rounds in 15 before the fix)
        path = tmp_path / f"race-{attempt}" / "store.sqlite"
        path.parent.mkdir()
        barrier, results = context.Barrier(8), context.Queue()
        procs = [context.Process(target=_open, args=(str(path), barrier, results)) for _ in range(8)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        assert outcomes == [("ok", SCHEMA_VERSION)] * 8, outcomes
