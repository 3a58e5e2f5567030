"""The command line: the vertical slice and its answers to bad input.

Most commands run in-process through the real entry point (models stay loaded between calls); the ones whose exit
code and output a user sees first run as real processes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hopmem.app.cli import main
from hopmem.memory.store import MemoryStore
from tests.conftest import run_hopmem


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["hopmem", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def _store_snapshot(data_dir: Path) -> tuple[int, int, int, list[str]]:
    with MemoryStore(data_dir / "hopmem.sqlite") as store:
        s = store.stats("default")
        return s["documents"], s["memories"], s["vectors"], store.integrity_problems()


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOPMEM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_ingest_then_ask_json_cites_stored_chunks(data_dir: Path, sample_dir: Path) -> None:
    ingest = run_hopmem("ingest", "--quiet", "--json", str(sample_dir))
    assert ingest.returncode == 0, ingest.stderr
    report = json.loads(ingest.stdout)
    assert report["added"] == 4 and report["errors"] == []
    result = run_hopmem("ask", "--json", "Who decoded the honeybee dance?")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"answer", "citations", "trace"}
    assert data["answer"].strip()
    assert [s["step"] for s in data["trace"]] == ["plan", "retrieve", "hop", "fuse", "rerank", "answer", "remember"]
    assert all(isinstance(s["ms"], float) for s in data["trace"])
    assert data["citations"][0]["title"] == "How honeybees share directions"
    for citation in data["citations"]:
        assert set(citation) >= {"id", "title", "text", "score"}
    with MemoryStore(data_dir / "hopmem.sqlite") as store:
        ids = [c["id"] for c in data["citations"]]
        assert [r.id for r in store.get("default", ids)] == ids


def test_demo_prints_an_answer_with_a_citation() -> None:
    result = run_hopmem("demo")
    assert result.returncode == 0, result.stderr
    assert "A: " in result.stdout
    assert " *[1] How honeybees share directions" in result.stdout


def test_chat_resumes_a_thread_across_processes(data_dir: Path, sample_dir: Path) -> None:
    env = {"HOPMEM_LLM_BACKEND": "none"}
    assert run_hopmem("ingest", "-q", str(sample_dir), env=env).returncode == 0
    first = run_hopmem("chat", "--thread", "abc", stdin="What causes the tides?\n", env=env)
    assert first.returncode == 0, first.stderr
    assert "thread abc" in first.stderr
    second = run_hopmem("chat", "--thread", "abc", stdin="\nWhat are spring tides?\n/exit\nignored\n", env=env)
    assert second.returncode == 0, second.stderr
    from hopmem import Agent, get_settings

    agent = Agent(settings=get_settings(llm_backend="none"))
    turns = agent.history("abc")
    agent.close()
    assert [t["content"] for t in turns if t["role"] == "user"] == [
        "What causes the tides?",
        "What are spring tides?",
    ]


def test_bad_inputs_fail_with_one_sentence_and_lose_nothing(
    data_dir: Path,
    sample_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HOPMEM_LLM_BACKEND", "none")
    code, _, err = cli(monkeypatch, capsys, "ingest", "-q", str(sample_dir))
    assert code == 0, err
    before = _store_snapshot(data_dir)
    assert before[:3] == (4, 4, 4) and before[3] == []

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    corrupt = tmp_path / "broken.pdf"
    corrupt.write_bytes(b"%PDF-1.4\n garbage that is no PDF at all")
    unknown = tmp_path / "table.xyz"
    unknown.write_text("some text")
    cases = {
        "missing": (["ingest", "-q", str(tmp_path / "nope.md")], "does not exist"),
        "empty": (["ingest", "-q", str(empty)], "empty"),
        "corrupt pdf": (["ingest", "-q", str(corrupt)], "could not be read as PDF"),
        "unknown extension": (["ingest", "-q", str(unknown)], "unsupported extension"),
        "empty question": (["ask", "  "], "question is empty"),
        "megabyte question": (["ask", "why " * 262_144], "above the limit"),
    }
    for name, (args, expected) in cases.items():
        code, _, err = cli(monkeypatch, capsys, *args)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code != 0, name
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (name, err)
        assert _store_snapshot(data_dir) == before, name

    code, out, _ = cli(monkeypatch, capsys, "ask", "--json", "What does a Fresnel lens do?")
    assert code == 0 and json.loads(out)["citations"][0]["title"] == "Why lighthouses flash in patterns"


def test_missing_path_exits_non_zero_in_a_real_process(data_dir: Path) -> None:
    result = run_hopmem("ingest", "-q", "/definitely/not/here.txt")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: /definitely/not/here.txt does not exist; check the path."]


def test_unavailable_model_is_one_clear_sentence(data_dir: Path) -> None:
    result = run_hopmem("models", "check", env={"HOPMEM_EMBEDDER": "acme/no-such-embedder"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "acme/no-such-embedder" in lines[0] and "pass the path" in lines[0]


def test_help_lists_the_commands() -> None:
    result = run_hopmem("--help")
    for command in ("ingest", "ask", "chat", "demo", "config", "eval", "models"):
        assert command in result.stdout
