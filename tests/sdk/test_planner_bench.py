"""The planner benchmark (``hopmem bench planner``): its summary and a run of the rules alone, no LLM needed."""

from __future__ import annotations

import json
from pathlib import Path

from hopmem.bench.planner_bench import load_hotpot_questions, planner_benchmark, summarise_benchmark


def test_summary_counts_validity_fallbacks_and_decision_accuracy() -> None:
    def row(kind: str | None, mode: str, source: str, rule: str, warning: str | None = None) -> dict[str, object]:
        return {
            "type": kind,
            "plan": {"mode": mode, "source": source, "warning": warning, "ms": 10.0},
            "rule": {"mode": rule},
        }

    rows = [
        row("comparison", "parallel", "llm", "parallel"),
        row("bridge", "sequential", "llm", "whole"),
        row(
            "bridge",
            "whole",
            "fallback",
            "whole",
            "LLM plan not used: a sequential plan whose sub-queries use no earlier answer",
        ),
        row(None, "whole", "llm", "whole"),
    ]
    summary = summarise_benchmark(rows)
    assert summary["llm_valid_rate"] == 0.75 and summary["fallback_rate"] == 0.25
    assert summary["fallback_reasons"] == {"use no earlier answer": 1}
    assert summary["decision_accuracy"]["planner"]["all"] == {"n": 3, "correct": 2, "accuracy": 0.6667}
    assert summary["decision_accuracy"]["rules"]["bridge"]["accuracy"] == 0.0
    assert summary["decision_accuracy"]["always_whole"]["comparison"]["accuracy"] == 0.0


def test_the_rules_alone_on_labelled_questions(tmp_path: Path) -> None:
    queries = [
        {"_id": "c1", "text": "Which is older, Rome or Paris?", "metadata": {"type": "comparison"}},
        {
            "_id": "b1",
            "text": "What position did the woman who portrayed Corliss Archer hold?",
            "metadata": {"type": "bridge"},
        },
        {"_id": "u1", "text": "What is the capital of France?"},
    ]
    data = tmp_path / "hotpotqa"
    data.mkdir()
    (data / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries) + "\n")
    assert [q["id"] for q in load_hotpot_questions(data)] == ["c1", "b1", "u1"]
    labelled = load_hotpot_questions(data, labelled_only=True)
    assert labelled == [
        {"id": "c1", "text": queries[0]["text"], "type": "comparison"},
        {"id": "b1", "text": queries[1]["text"], "type": "bridge"},
    ]
    done: list[tuple[int, int]] = []
    log = tmp_path / "plans.jsonl"
    summary = planner_benchmark(None, labelled, log_path=log, progress=lambda n, total: done.append((n, total)))
    assert done == [(1, 2), (2, 2)]
    assert [json.loads(line)["id"] for line in log.read_text().splitlines()] == ["c1", "b1"]
    assert summary["n_questions"] == 2 and summary["fallback_rate"] == 1.0  # no LLM: every plan is the rules'
    assert summary["decision_accuracy"]["rules"]["all"] == {"n": 2, "correct": 2, "accuracy": 1.0}
    assert summary["decision_accuracy"]["always_whole"]["all"]["accuracy"] == 0.0
