"""The run record every report and trainer writes: the same keys everywhere, standard library only."""

from __future__ import annotations

import json
import subprocess
import sys

from hopmem.memory.run_record import RunRecord, cli_command, utc_time


def test_the_record_names_code_machine_versions_command_and_times() -> None:
    record = RunRecord("hopmem eval retrieval --dataset x", started=0.0).finish({"data": {"x": "abc"}})
    assert list(record) == [
        "git_revision",
        "machine",
        "versions",
        "command",
        "started_at",
        "finished_at",
        "inputs",
    ]
    assert record["git_revision"]  # a commit, with -dirty, or "unknown" outside git
    assert {"platform", "processor", "cpus", "python", "load_average_1m"} <= set(record["machine"])
    assert record["versions"]["hopmem"]
    assert record["command"] == "hopmem eval retrieval --dataset x"
    assert record["started_at"] == "1970-01-01T00:00:00Z" and record["finished_at"] > record["started_at"]
    assert record["inputs"] == {"data": {"x": "abc"}}
    json.dumps(record)  # reports are JSON


def test_no_inputs_no_inputs_key_and_times_are_utc_seconds() -> None:
    assert "inputs" not in RunRecord().finish()
    assert utc_time(86400.9) == "1970-01-02T00:00:00Z"


def test_torch_fields_only_when_torch_is_loaded_and_the_module_never_loads_it() -> None:
    code = (
        "import sys, json; from hopmem.memory.run_record import RunRecord; r = RunRecord().finish(); "
        "print(json.dumps([('torch' in sys.modules), 'torch_threads' in r['machine'], 'torch' in r['versions']]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [False, False, False]


def test_cli_command_is_none_outside_the_hopmem_cli() -> None:
    assert cli_command() is None  # pytest is not the hopmem command
