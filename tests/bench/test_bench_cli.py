"""``hopmem bench memory`` and ``hopmem bench concurrency`` run end to end, print a table and write their JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hopmem.app.cli import main
from tests.conftest import run_hopmem


def test_bench_memory_command_prints_a_table_and_writes_json(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reports" / "memory.json"
    argv = ["hopmem", "bench", "memory", "--n", "60", "--queries", "5", "--data", str(shared_data), "--json", str(out)]
    monkeypatch.setattr(sys, "argv", [*argv, "-q"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "hybrid (incl. embedding)" in printed and "ingest" in printed
    report = json.loads(out.read_text())
    assert report["n"] == 60 and report["queries"] == 5
    assert report["command"].startswith("hopmem bench memory --n 60")


def test_bench_memory_bad_data_folder_fails_with_one_line(tmp_path: Path) -> None:
    result = run_hopmem("bench", "memory", "--n", "10", "--data", str(tmp_path), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and "--data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bench_concurrency_command_runs_as_a_real_process(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "concurrency.json"
    result = run_hopmem(
        "bench", "concurrency", "--procs", "2", "--ops", "6", "--data", str(shared_data), "--json", str(out), "-q"
    )
    assert result.returncode == 0, result.stderr
    assert "errors=0  lost=0  duplicated=0" in result.stdout
    report = json.loads(out.read_text())
    assert {"procs", "ops", "errors", "lost", "duplicated", "p95_ms"} <= set(report)
    assert (report["procs"], report["ops"], report["logged_ops"]) == (2, 6, 12)
