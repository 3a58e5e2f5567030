"""The concurrency benchmark: its verifier catches lost and duplicated writes, and a small real run is clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hopmem.bench.concurrency_bench import run_concurrency_bench, verify, verify_workdir
from hopmem.bench.concurrency_worker import marker
from hopmem.memory.store import MemoryStore
from hopmem.settings import get_settings

REQUIRED = {"procs", "ops", "errors", "lost", "duplicated", "p95_ms"}


def _log(w: int, seq: int, op: str, memory_id: int | None = None, *, ok: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"w": w, "seq": seq, "op": op, "ok": ok, "ms": 1.0}
    if memory_id is not None:
        entry["id"] = memory_id
    if op in ("add", "update"):
        entry["marker"] = marker(w, seq)
    return entry


def _content(w: int, seq: int) -> str:
    return f"some real text {marker(w, seq)}"


def test_verify_accepts_a_store_that_matches_its_logs() -> None:
    entries = [
        _log(0, 0, "add", 10),
        _log(0, 1, "update", 10),
        _log(0, 2, "add", 12),
        _log(0, 3, "erase", 12),
        _log(1, 0, "add", 11),
        _log(1, 1, "search"),
    ]
    rows = {1: "seed text", 10: _content(0, 1), 11: _content(1, 0)}
    result = verify(entries, rows, seed_ids=[1])
    assert (result.errors, result.lost, result.duplicated, result.not_erased) == (0, 0, 0, 0)
    assert result.expected_rows == result.stored_rows == 3


def test_verify_detects_lost_stale_duplicated_and_not_erased_writes() -> None:
    entries = [
        _log(0, 0, "add", 10),  # its row is missing: lost
        _log(0, 1, "add", 11),
        _log(0, 2, "update", 11),  # the row still holds the add's content: lost (stale)
        _log(1, 0, "add", 20),
        _log(1, 1, "add", 21),
        _log(1, 2, "erase", 21),  # still stored: not erased
        _log(1, 3, "add", None, ok=False),  # an error
    ]
    rows = {
        1: "seed",
        11: _content(0, 1),
        20: _content(1, 0),
        22: _content(1, 0),  # the same content a second time: duplicated
        21: _content(1, 1),
    }
    result = verify(entries, rows, seed_ids=[1, 2])  # seed 2 vanished: lost
    assert result.errors == 1
    assert result.lost == 3
    assert result.seeds_lost == 1
    assert result.duplicated == 1
    assert result.not_erased == 1
    assert len(result.examples) == 5


def test_verify_accepts_either_state_after_a_failed_op_and_counts_orphans_apart() -> None:
    entries = [
        _log(0, 0, "add", 10),
        _log(0, 1, "update", 10, ok=False),  # the row may hold either content
        _log(0, 2, "add", None, ok=False),  # raised, but the row was written
    ]
    rows = {10: _content(0, 1), 11: _content(0, 2)}
    result = verify(entries, rows, seed_ids=[])
    assert (result.errors, result.lost, result.duplicated, result.orphans_of_errors) == (2, 0, 0, 1)


def test_honest_concurrent_workers_pass_the_trust_gate_and_a_doctored_store_is_caught(
    shared_data: Path, tmp_path: Path
) -> None:
    # Seed 5, 30 ops: each worker erases two or three of its own fresh memories, which once counted as the user
    # deleting the agent's writes (trust 0.4 after two), so that its later adds were held and its updates failed.
    settings = get_settings(trust_gate=True)
    report = run_concurrency_bench(
        2, 30, settings=settings, seed=5, progress=False, data_root=shared_data, workdir=tmp_path
    )
    assert report["op_counts"]["erase"] >= 4
    assert set(report) >= REQUIRED | {"per_op", "wall_s", "machine", "command"}
    assert (report["procs"], report["ops"], report["logged_ops"]) == (2, 30, 60)
    assert (report["errors"], report["lost"], report["duplicated"]) == (0, 0, 0), report["verification"]
    checks = report["verification"]
    assert checks["quarantined_rows"] == 0 and checks["held_writes"] == 0, checks
    assert checks["visible_rows"] == checks["stored_rows"] == checks["expected_rows"] > 0
    assert checks["rows_without_vector"] == 0 and checks["hidden_rows_with_vector"] == 0
    assert checks["integrity_problems"] == []
    assert report["exit_codes"] == [0, 0]
    assert report["p95_ms"] > 0 and report["per_op"]["add"]["count"] > 0
    assert json.loads(json.dumps(report)) == report
    assert checks["trust_signals"] == {}  # honest work gives no signal: no burst, no contradiction, no correction

    # doctor the store: drop one logged memory, store a copy of another
    with MemoryStore(tmp_path / "data" / "hopmem.sqlite") as store:
        rows = store.conn.execute(
            "SELECT id FROM memories WHERE content LIKE '%[bench:w%' ORDER BY id LIMIT 2"
        ).fetchall()
        store.conn.execute("DELETE FROM memories WHERE id = ?", (rows[0][0],))
        store.conn.execute(
            "INSERT INTO memories (tenant, title, content, content_hash, source_class, created_at, updated_at,"
            " provenance) SELECT tenant, title, content, content_hash, source_class, created_at, updated_at,"
            " provenance FROM memories WHERE id = ?",
            (rows[1][0],),
        )
    result, _, checks = verify_workdir(tmp_path, "default")
    assert (result.lost, result.duplicated, result.errors) == (1, 1, 0)
    assert checks["rows_without_vector"] == 1
