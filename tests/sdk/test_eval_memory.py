"""``hopmem eval memory``: recall counted over turns, the report's shape, the CLI, and a short run on LoCoMo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hopmem.eval.memory import CATEGORIES, evaluate_memory, turn_ranking, turn_recall
from hopmem.settings import get_settings
from tests.conftest import SHARED_DATA
from tests.sdk.test_conversations import sample

LOCOMO = SHARED_DATA / "locomo" / "locomo_dev.json"


def record(*turns: str) -> SimpleNamespace:
    return SimpleNamespace(metadata={"dia_ids": list(turns)})


def test_a_window_takes_as_many_places_as_it_holds_turns() -> None:
    # Memory-level counting would find the evidence at rank 3 of 3; counted over turns it is at place 12.
    windows = [record("D1:1", "D1:2", "D1:3", "D1:4", "D1:5"), record(*[f"D2:{i}" for i in range(1, 7)]),
               record("D3:1", "D3:2")]  # fmt: skip
    ranking = turn_ranking(windows)
    assert len(ranking) == 13 and ranking.index("D3:1") == 11
    assert turn_recall(ranking, ["D3:1"], 10) == 0.0
    assert turn_recall(ranking, ["D3:1"], 12) == 1.0
    singles = turn_ranking([record("D1:1"), record("D3:1")])
    assert turn_recall(singles, ["D3:1", "D9:9"], 5) == 0.5
    # A turn repeated by an overlapping window takes a place again rather than counting once
    assert turn_ranking([record("D1:1", "D1:2"), record("D1:2", "D1:3")]) == ["D1:1", "D1:2", "D1:2", "D1:3"]
    assert turn_recall([], ["D1:1"], 10) == 0.0 and turn_recall(["D1:1"], [], 10) == 0.0


def test_evaluate_memory_report_and_log_hold_numbers_and_ids_only(tmp_path: Path) -> None:
    path = tmp_path / "chats.json"
    path.write_text(json.dumps([sample("chat-1"), sample("chat-2", year=2025)]))
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none", reranker="none")
    out = tmp_path / "report.json"
    report = evaluate_memory(
        path, methods=["lexical", "hybrid", "agent"], settings=settings, json_out=out, progress=False
    )
    assert report["conversations"] == ["chat-1", "chat-2"] and report["n_questions"] == 10
    assert report["no_evidence"] == 2  # the question whose only evidence id names no turn, in each conversation
    for method in ("lexical", "hybrid", "agent"):
        data = report["methods"][method]
        assert data["overall"]["n"] == 8
        assert set(data["by_category"]) == set(CATEGORIES.values())
        assert 0.0 <= data["overall"]["recall@5"] <= data["overall"]["recall@10"] <= 1.0
        assert data["latency_ms"]["p50"] > 0
    assert report["methods"]["hybrid"]["by_category"]["temporal"]["recall@5"] == 1.0
    agent = report["methods"]["agent"]
    assert agent["f1_kind"].startswith("extractive") and agent["f1_questions"] == 8 and agent["errors"] == 0
    assert report["settings"]["agent"]["hyde"] is True and agent["hyde_questions"] == 0  # on, but no LLM to guess
    assert report["ingest"][0]["quarantined"] == 0 and report["ingest"][0]["memories"] == 10
    assert report["settings"]["memory"]["window"] == 1 and report["machine"]
    assert set(report["settings"]["conversation_rerank"]) == {"floor", "floor_list", "blend", "date", "speaker"}
    rows = [json.loads(line) for line in (tmp_path / "report.queries.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and rows[0]["id"] == "chat-1:q0"
    texts = " ".join(json.dumps(r) for r in rows) + out.read_text()
    assert "adopt" not in texts and "Pebble" not in texts  # no question, answer or turn text


def test_evaluate_memory_with_workers_gives_the_same_figures(tmp_path: Path) -> None:
    from hopmem.memory.errors import InputError

    path = tmp_path / "chats.json"
    path.write_text(json.dumps([sample("chat-1"), sample("chat-2", year=2025)]))
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none")
    one = evaluate_memory(path, methods=["lexical", "hybrid"], settings=settings, progress=False)
    two = evaluate_memory(path, methods=["lexical", "hybrid"], settings=settings, progress=False, workers=2)
    assert two["conversations"] == ["chat-1", "chat-2"]  # the file's order, whichever process finished first
    for method in ("lexical", "hybrid"):
        assert two["methods"][method]["by_category"] == one["methods"][method]["by_category"]
    assert [i["memories"] for i in two["ingest"]] == [i["memories"] for i in one["ingest"]]
    # With workers, hybrid search is also timed alone afterwards, over the first conversation's questions
    alone = two["methods"]["hybrid"]["latency_ms_alone"]
    assert alone["conversation"] == "chat-1" and alone["questions"] == 5 and 0 < alone["p50"] <= alone["p95"]
    assert "latency_ms_alone" not in one["methods"]["hybrid"]
    load = two["settings"]["machine_load_1m"]
    assert two["settings"]["workers"] == 2 and 0 <= load["start"] <= load["max"] and load["end"] <= load["max"]
    with pytest.raises(InputError, match="workers"):
        evaluate_memory(path, methods=["lexical"], settings=settings, progress=False, workers=0)


def test_evaluate_memory_limit_and_unknown_method(tmp_path: Path) -> None:
    from hopmem.memory.errors import InputError

    path = tmp_path / "chats.json"
    path.write_text(json.dumps([sample("chat-1"), sample("chat-2", year=2025)]))
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none")
    report = evaluate_memory(path, methods=["lexical"], settings=settings, limit=3, progress=False)
    assert report["conversations"] == ["chat-1"] and report["n_questions"] == 3
    with pytest.raises(InputError, match="Unknown method"):
        evaluate_memory(path, methods=["bm42"], settings=settings, progress=False)


def test_cli_eval_memory_writes_the_report_and_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hopmem.app.cli import main

    path = tmp_path / "chats.json"
    path.write_text(json.dumps([sample()]))
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    args = ["eval", "memory", "--dataset", str(path), "--methods", "lexical,dense,hybrid", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", ["hopmem", "--llm-backend", "none", *args, "--plot", str(png), "--quiet"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "hybrid   overall" in printed and "latency p50" in printed
    report = json.loads(out.read_text())
    assert list(report["methods"]) == ["lexical", "dense", "hybrid"] and report["plot"] == "r.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # 82 s on this loaded 2-core machine: storing a 419-turn conversation embeds every turn
@pytest.mark.skipif(not LOCOMO.is_file(), reason=f"LoCoMo (CC BY-NC, evaluation only) not found at {LOCOMO}")
def test_eval_memory_on_locomo_with_a_limit(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none")
    report = evaluate_memory(LOCOMO, methods=["lexical", "hybrid"], settings=settings, limit=20, progress=False)
    assert report["conversations"] == [report["conversations"][0]] and report["n_questions"] == 20
    assert report["ingest"][0]["turns"] > 100 and report["ingest"][0]["quarantined"] == 0
    for method in ("lexical", "hybrid"):
        assert 0.2 < report["methods"][method]["overall"]["recall@10"] <= 1.0


def test_with_an_llm_the_agent_also_searches_its_guessed_answer(tmp_path: Path) -> None:
    from hopmem.agents.llm import load_llm

    path = tmp_path / "chats.json"
    path.write_text(json.dumps([sample("chat-1")]))
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none", reranker="none")
    smollm2 = load_llm("llamacpp", "SmolLM2-135M-Instruct", threads=1, seed=0)  # the packaged model, in process
    report = evaluate_memory(path, methods=["agent"], settings=settings, llm=smollm2, progress=False)
    agent = report["methods"]["agent"]
    assert agent["errors"] == 0 and agent["f1_kind"] == "llm"
    assert agent["hyde_questions"] == report["n_questions"] == 5  # every question: the guess is searched too
