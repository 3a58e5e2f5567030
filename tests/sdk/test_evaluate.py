"""The retrieval evaluation harness on a small real BEIR folder cut from Cranfield."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopmem.eval.retrieval import evaluate_retrieval
from hopmem.memory.errors import InputError
from tests.conftest import run_hopmem


@pytest.mark.parametrize("method", ["bm25", "dense", "hybrid"])
def test_report_shape_metrics_and_per_query_log(small_beir: Path, tmp_path: Path, method: str) -> None:
    out = tmp_path / f"{method}.json"
    report = evaluate_retrieval(small_beir, "test", method, k=10, json_out=out, progress=False)
    assert json.loads(out.read_text()) == report
    assert report["dataset"] == str(small_beir) and report["split"] == "test" and report["method"] == method
    assert report["n_queries"] == 20
    assert set(report["metrics"]) == {"ndcg@10", "recall@5", "recall@10", "mrr@10"}
    assert all(0.0 <= v <= 1.0 for v in report["metrics"].values())
    # Real retrieval over a corpus where every query's judged docs are present finds some of them.
    assert report["metrics"]["recall@10"] > 0.2
    assert report["metrics"]["recall@10"] >= report["metrics"]["recall@5"]
    assert report["latency_ms"]["p95"] >= report["latency_ms"]["p50"] > 0
    assert len(report["dataset_sha256"]) == 64 and report["git_revision"]
    rows = [json.loads(line) for line in out.with_name(report["per_query_log"]).read_text().splitlines()]
    assert len(rows) == 20
    mean_ndcg = sum(r["metrics"]["ndcg@10"] for r in rows) / len(rows)
    assert abs(mean_ndcg - report["metrics"]["ndcg@10"]) < 1e-3
    assert all(len(r["ranked"]) <= 10 and len(set(r["ranked"])) == len(r["ranked"]) for r in rows)


def test_empty_corpus_records_are_skipped(small_beir: Path, tmp_path: Path) -> None:
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    corpus = (small_beir / "corpus.jsonl").read_text()
    (root / "corpus.jsonl").write_text(corpus + json.dumps({"_id": "empty", "title": "", "text": ""}) + "\n")
    for name in ("queries.jsonl", "qrels/test.tsv"):
        (root / name).write_text((small_beir / name).read_text())
    report = evaluate_retrieval(root, "test", "bm25", progress=False, max_queries=3)
    assert report["n_queries"] == 3


def test_unknown_split_and_method_are_refused(small_beir: Path) -> None:
    with pytest.raises(InputError, match="splits here: test"):
        evaluate_retrieval(small_beir, "dev", "bm25", progress=False)
    with pytest.raises(InputError, match="Unknown method"):
        evaluate_retrieval(small_beir, "test", "colbert", progress=False)


def test_cli_writes_the_report(small_beir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run_hopmem(
        "eval",
        "retrieval",
        "--dataset",
        str(small_beir),
        "--split",
        "test",
        "--method",
        "bm25",
        "--json",
        str(out),
        "-q",
    )
    assert result.returncode == 0, result.stderr
    assert "nDCG@10" in result.stdout
    assert json.loads(out.read_text())["command"].startswith("hopmem eval retrieval")
