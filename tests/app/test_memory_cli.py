"""``hopmem memory ...`` through the real installed script, as a user runs it.

Each process that embeds text loads the model (seconds), so most tests seed the store in-process with unit vectors
recorded under the real embedder's name, and only the commands that need the model run it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hopmem.memory.records import MemoryInput
from hopmem.memory.store import MemoryStore
from tests.conftest import run_hopmem

REAL = ("all-MiniLM-L6-v2", 384)


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOPMEM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def ok(*args: str, stdin: str | None = None) -> str:
    result = run_hopmem(*args, stdin=stdin)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def fails(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a command that must fail the way a user can act on: non-zero, one ``error:`` line, no traceback."""
    result = run_hopmem(*args)
    assert result.returncode != 0, (args, result.stdout)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def seed(data_dir: Path, items: list[MemoryInput]) -> list[int]:
    rows = np.random.default_rng(0).normal(size=(len(items), REAL[1])).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    with MemoryStore(data_dir / "hopmem.sqlite") as store:
        return [r.id for r in store.add_memories("default", items, rows, embedder=REAL)]


def test_add_from_stdin_then_get_export_and_stats(data_dir: Path) -> None:
    text = "The lighthouse keeper logs the weather at dawn.\nAnd again at dusk."
    added = json.loads(
        ok(
            "memory", "add", "--json", "--title", "Keeper", "--tag", "sea", "--tag", "work",
            "--metadata", '{"page": 3, "ok": true}', "--agent", "scribe", "--source-class", "agent",
            "--importance", "0.7", "-",
            stdin=text,
        )
    )  # fmt: skip
    assert added["id"] == 1 and added["tenant"] == "default"
    assert (added["content"], added["title"]) == (text, "Keeper")
    assert added["tags"] == ["sea", "work"] and added["metadata"] == {"page": 3, "ok": True}
    assert (added["agent_id"], added["source_class"], added["importance"]) == ("scribe", "agent", 0.7)
    assert [e["action"] for e in added["provenance"]] == ["add"]

    assert json.loads(ok("memory", "get", "--json", "1")) == added
    lines = ok("memory", "export").splitlines()
    assert [json.loads(line) for line in lines] == [added]
    stats = json.loads(ok("memory", "stats", "--json"))
    assert (stats["memories"], stats["vectors"], stats["agents"]) == (1, 1, 1)
    assert stats["embedder"] == REAL[0] and stats["by_source_class"] == {"agent": 1}
    # the stored vector is a real embedding of the title and text
    with MemoryStore(data_dir / "hopmem.sqlite") as store:
        _, vectors = store.vectors_by_ids("default", [1])
        assert vectors.shape == (1, REAL[1])
        assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-4


def test_search_feedback_reindex_erase_and_export(data_dir: Path) -> None:
    ids = seed(
        data_dir,
        [
            MemoryInput("The lighthouse beam sweeps the harbour.", tags=("red",), agent_id="alice"),
            MemoryInput("A lighthouse stands on the rocky cape.", tags=("blue",), agent_id="bob"),
            MemoryInput("Lighthouse keepers lived in the tower.", tags=("red", "blue"), agent_id="bob"),
            MemoryInput("Bread rises overnight in a warm kitchen.", tags=("food",), agent_id="alice"),
        ],
    )

    def search(*args: str) -> list[int]:
        data = json.loads(ok("memory", "search", "--json", "--mode", "lexical", *args))
        assert all(set(r) >= {"id", "title", "text", "score", "ranks"} for r in data)
        return sorted(r["id"] for r in data)

    assert search("lighthouse") == ids[:3]
    assert search("--tag", "red", "lighthouse") == [ids[0], ids[2]]
    assert search("--agent", "bob", "--since", "2000-01-01", "lighthouse") == [ids[1], ids[2]]
    assert search("--until", "2000-01-01", "lighthouse") == []

    assert ok("memory", "feedback", str(ids[0]), "up", "--query", "harbour light").strip() == (
        f"recorded up on memory {ids[0]}"
    )
    stats = json.loads(ok("memory", "stats", "--json"))
    assert (stats["memories"], stats["vectors"], stats["feedback"]) == (4, 4, 1)
    assert ok("memory", "reindex").strip() == "rebuilt the exact index: 4 vectors"

    report = json.loads(ok("memory", "erase", "--json", str(ids[0])))
    assert (report["memories"], report["vectors"], report["feedback"], report["ids"]) == (1, 1, 1, [ids[0]])
    assert report["files_scrubbed"] is True
    report = json.loads(ok("memory", "erase", "--json", "--tag", "blue", "--agent", "bob"))
    assert sorted(report["ids"]) == [ids[1], ids[2]]
    exported: list[dict[str, Any]] = [json.loads(line) for line in ok("memory", "export").splitlines()]
    assert [r["id"] for r in exported] == [ids[3]]
    assert exported[0]["content"] == "Bread rises overnight in a warm kitchen."
    fails("memory", "get", str(ids[0]))

    report = json.loads(ok("memory", "erase", "--all", "--yes", "--json"))
    assert report["ids"] == [ids[3]]
    assert ok("memory", "export") == ""
    assert json.loads(ok("memory", "stats", "--json"))["memories"] == 0


def test_bad_input_gives_one_error_line_and_changes_nothing(data_dir: Path) -> None:
    seed(data_dir, [MemoryInput("The only memory, kept safe.")])
    snapshot = ok("memory", "export")

    assert fails("memory", "add", "").returncode == 2
    assert "empty" in fails("memory", "add", "   ").stderr
    assert "--metadata is not valid JSON" in fails("memory", "add", "--metadata", "{bad", "text").stderr
    assert "JSON object" in fails("memory", "add", "--metadata", "[1, 2]", "text").stderr
    assert "no memory 999" in fails("memory", "get", "999").stderr
    assert "no memory 999" in fails("memory", "feedback", "999", "up").stderr
    assert "Unknown feedback" in fails("memory", "feedback", "1", "love").stderr
    assert "Say what to erase" in fails("memory", "erase").stderr
    assert "empty" in fails("memory", "search", "--mode", "lexical", "  ").stderr
    assert "--since" in fails("memory", "search", "--since", "yesterday", "memory").stderr

    assert ok("memory", "export") == snapshot
    stats = json.loads(ok("memory", "stats", "--json"))
    assert (stats["memories"], stats.get("feedback", 0)) == (1, 0)


@pytest.mark.slow
def test_added_memories_are_found_by_dense_and_hybrid_search(data_dir: Path) -> None:
    ok("memory", "add", "--agent", "geo", "Volcanoes erupt and pour lava down the mountain.")
    ok("memory", "add", "--agent", "baker", "Bake the chocolate cake at 180 degrees.")
    dup = json.loads(ok("memory", "add", "--json", "Bake the chocolate cake at 180 degrees."))
    assert dup["id"] == 2
    hybrid = json.loads(ok("memory", "search", "--json", "--k", "1", "how long to bake a cake"))
    assert [r["id"] for r in hybrid] == [2] and set(hybrid[0]["ranks"]) <= {"lexical", "dense"}
    dense = json.loads(ok("memory", "search", "--json", "--mode", "dense", "--agent", "geo", "baking a cake"))
    assert [r["id"] for r in dense] == [1]
