"""``hopmem memory quarantine list|approve|reject`` and ``hopmem trust show|history`` as real processes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_hopmem


def test_review_held_writes_and_read_trust_from_the_shell(tmp_path: Path) -> None:
    env = {"HOPMEM_DATA_DIR": str(tmp_path / "data"), "HOPMEM_TRUST_THRESHOLD": "0.7"}
    for text in ("The keeper lit the lamp at dusk.", "The keeper's dog was called Rover."):
        added = run_hopmem("memory", "add", text, "--agent", "night-shift", "--json", env=env)
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["quarantined"] is True
    listed = run_hopmem("memory", "quarantine", "list", "--json", env=env)
    held = json.loads(listed.stdout)
    assert [h["agent"] for h in held] == ["night-shift", "night-shift"]
    assert all("below 0.70" in h["reason"] for h in held)
    first, second = held[0]["id"], held[1]["id"]

    assert run_hopmem("memory", "quarantine", "approve", str(first), "--note", "ok", env=env).returncode == 0
    rejected = run_hopmem("memory", "quarantine", "reject", str(second), env=env)
    assert rejected.returncode == 0 and "erased 1" in rejected.stdout
    found = json.loads(run_hopmem("memory", "search", "keeper lamp dusk", "--json", env=env).stdout)
    assert [r["id"] for r in found] == [first] and found[0]["agent"] == "night-shift"
    assert json.loads(run_hopmem("memory", "quarantine", "list", "--json", env=env).stdout) == []

    shown = json.loads(run_hopmem("trust", "show", "--json", env=env).stdout)
    assert shown["threshold"] == 0.7
    (agent,) = shown["agents"]
    assert agent["agent"] == "night-shift" and agent["signals"] == 2
    history = json.loads(run_hopmem("trust", "history", "night-shift", "--json", env=env).stdout)
    assert [e["kind"] for e in history] == ["approved", "rejected"]
    text = run_hopmem("trust", "history", "night-shift", env=env).stdout
    assert "approved" in text and "rejected" in text

    missing = run_hopmem("memory", "quarantine", "approve", "999", env=env)
    assert missing.returncode == 2 and "not in quarantine" in missing.stderr
