"""``hopmem bench serve``: a small real run against a real ``hopmem serve`` (two workers) on loopback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.app.server_helpers import server_env
from tests.conftest import run_hopmem


def _ordered(row: dict[str, Any]) -> None:
    assert 0 < row["p50"] <= row["p95"] <= row["p99"] <= row["max"], row


def test_bench_serve_small_run_has_no_errors_and_keeps_every_write(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "serve.json"
    args = ["--n", "200", "--clients", "4", "--requests", "40", "--workers", "2", "--idle-queries", "5"]
    args += ["--sweep", "1,3", "--sweep-requests", "12", "--plot", str(tmp_path / "sweep.png")]
    result = run_hopmem(
        "bench", "serve", *args, "--data", str(shared_data), "--json", str(out), env=server_env(tmp_path), timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "search" in result.stdout and "p99" in result.stdout and "target errors" in result.stdout
    report = json.loads(out.read_text())

    assert report["n"] == 200 and report["workers"] == 2 and report["clients"] == 4 and report["requests"] == 40
    assert report["store"]["seeded"] and report["store"]["vectors"] == 200
    per_op = report["per_op"]
    assert set(per_op) == {"search", "add"}
    assert per_op["search"]["count"] + per_op["add"]["count"] == 40
    assert per_op["add"]["count"] > 0 and per_op["search"]["count"] > per_op["add"]["count"]
    for row in (per_op["search"], per_op["add"], report["all"], report["idle_search"]):
        assert row["errors"] == 0
        _ordered(row)
    assert report["errors"] == 0 and report["error_samples"] == [] and report["warmup_errors"] == 0
    assert report["throughput_rps"] > 0 and report["wall_s"] > 0

    sweep = report["sweep"]
    assert [r["clients"] for r in sweep] == [1, 3] and [r["requests"] for r in sweep] == [12, 12]
    for row in sweep:
        assert row["search"]["errors"] == row["add"]["errors"] == 0 and row["throughput_rps"] > 0
        assert row["bound_ms"] == pytest.approx(1000 * row["clients"] / row["throughput_rps"], rel=1e-2)
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    ver = report["verification"]
    adds = per_op["add"]["count"] + sum(r["add"]["count"] for r in sweep)
    assert ver["acknowledged_adds"] == ver["found"] == ver["indexed"] == adds
    assert ver["lost"] == [] and ver["unindexed"] == [] and ver["changed"] == []
    assert ver["stats"] == {"memories": 200 + adds, "vectors": 200 + adds}
    assert report["targets"]["errors"]["met"] and report["targets"]["lost_writes"]["met"]
    assert "search_p50_at_10k" not in report["targets"]  # judged only at 10k memories
    assert report["command"].startswith("hopmem bench serve --n 200") and report["git_revision"]
    assert report["machine"] and report["server"]["log_tail"] is None


def test_bench_serve_on_a_kept_store_leaves_it_untouched(shared_data: Path, tmp_path: Path) -> None:
    from hopmem.bench.corpus import generate_memories, load_corpus
    from hopmem.memory_api import Memory
    from hopmem.settings import get_settings

    kept = tmp_path / "kept"
    with Memory(get_settings(data_dir=kept, reranker="none", llm_backend="none")) as memory:
        memory.add_many(generate_memories(50, load_corpus(shared_data)), progress=False)
    before = (kept / "hopmem.sqlite").stat().st_size
    out = tmp_path / "serve.json"
    args = ["--store", str(kept), "--clients", "2", "--requests", "10", "--workers", "1", "--idle-queries", "0"]
    result = run_hopmem(
        "bench", "serve", *args, "--data", str(shared_data), "--json", str(out), env=server_env(tmp_path), timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["n"] == 50 and report["store"]["source"] == str(kept) and not report["store"]["seeded"]
    assert report["idle_search"] is None and report["errors"] == 0 and report["verification"]["lost"] == []
    with sqlite3.connect(kept / "hopmem.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM memories").fetchone()[0] == 50
    assert not (kept / "keys.sqlite").exists() and (kept / "hopmem.sqlite").stat().st_size == before


def test_bench_serve_without_a_store_there_fails_with_one_line(tmp_path: Path) -> None:
    result = run_hopmem("bench", "serve", "--store", str(tmp_path), env=server_env(tmp_path), timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().startswith("error: ") and "--store" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
