"""``hopmem eval retrieval --method treehop``: side-by-side rows on the same questions, trained questions skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hopmem.agents.multihop import MatrixSearch
from hopmem.agents.treehop_model import TreeHopConfig, TreeHopModel
from hopmem.eval.multihop import evaluate_multihop, second_hop_from_supporting
from hopmem.memory.errors import InputError
from hopmem.settings import get_settings
from tests.conftest import run_hopmem


@pytest.fixture()
def model_dir(tmp_path: Path, small_hotpot: Path) -> Path:
    """An untrained model whose data.json claims the first 4 dev questions were trained on."""
    folder = tmp_path / "treehop"
    TreeHopModel(TreeHopConfig(dim=384, attn_size=8, mlp_size=8, embedder="all-MiniLM-L6-v2")).save(folder)
    dev = [json.loads(x) for x in (small_hotpot / "queries.jsonl").read_text().splitlines()]
    trained = [q["_id"] for q in dev if q["metadata"]["split"] == "dev"][:4]
    (folder / "data.json").write_text(json.dumps({"train_ids": trained[:3], "validation_ids": trained[3:]}))
    return folder


def test_rows_side_by_side_with_the_llm_baseline(
    small_hotpot: Path, model_dir: Path, tmp_path: Path, hotpot_cache: Path
) -> None:
    settings = get_settings(cache_dir=hotpot_cache)
    out = tmp_path / "report.json"
    report = evaluate_multihop(
        small_hotpot, "dev", hops=2, top_n=3, settings=settings, model_dir=model_dir, json_out=out,
        progress=False, max_queries=3,
    )  # fmt: skip
    assert json.loads(out.read_text()) == report
    assert report["excluded_trained_questions"] == 4 and report["n_queries"] == 3
    rows = {(r["method"], r["hops"], r["top_n"]): r for r in report["rows"]}
    k = report["direct_at_equal_chunks"]["k"]
    assert {("direct", 1, 5), ("direct", 1, 10), ("direct", 1, k), ("treehop", 2, 3), ("treehop", 3, 3)} <= set(rows)
    assert ("llm-rewrite", 2, 3) in rows and report["llm_calls"] == 3  # one rewrite per question at 2 hops
    assert rows[("direct", 1, 5)]["avg_chunks"] == 5 and rows[("direct", 1, 10)]["avg_chunks"] == 10
    assert rows[("treehop", 2, 3)]["avg_chunks"] <= 6 and rows[("treehop", 3, 3)]["avg_chunks"] <= 9
    assert rows[("direct", 1, 10)]["recall"] >= rows[("direct", 1, 5)]["recall"]
    assert all(0 <= r["recall"] <= 1 and r["p95_ms"] >= r["p50_ms"] > 0 for r in report["rows"])
    assert report["treehop"]["avg_chunks"] == rows[("treehop", 2, 3)]["avg_chunks"]
    assert report["latency_share_of_llm_rewrite"] == pytest.approx(
        rows[("treehop", 2, 3)]["p50_ms"] / rows[("llm-rewrite", 2, 3)]["p50_ms"], abs=1e-5
    )
    hop = report["hop_from_supporting_passage"]
    log = [json.loads(x) for x in (tmp_path / "report.queries.jsonl").read_text().splitlines()]
    applies = [e["from_supporting"] for e in log if e["from_supporting"]]
    assert 1 <= hop["questions"] == len(applies) and hop["missing_documents"] == sum(e["missing"] for e in applies)
    # The fixture's model is untrained, so its next query is the question itself: both rows must agree exactly.
    assert hop["found_share"]["treehop"] == hop["found_share"]["question"]
    assert len(log) == 3 and all(entry["llm-rewrite:2"]["calls"][0]["query"] for entry in log)
    assert all(len(set(e["treehop:2"]["tree"]["hops"][0][0].keys())) == 4 for e in log)


def test_cli_without_llm_and_with_a_wrong_model(
    small_hotpot: Path, model_dir: Path, tmp_path: Path, hotpot_cache: Path
) -> None:
    env = {"HOPMEM_CACHE_DIR": str(hotpot_cache)}
    done = run_hopmem(
        "eval", "retrieval", "--dataset", str(small_hotpot), "--split", "dev", "--method", "treehop",
        "--top-n", "3", "--treehop-model", str(model_dir), "--no-llm-baseline", "--max-queries", "2", "-q",
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "treehop" in done.stdout and "switched off" in done.stdout
    bad = run_hopmem(
        "eval", "retrieval", "--dataset", str(small_hotpot), "--split", "dev", "--method", "treehop",
        "--treehop-model", str(tmp_path / "missing"), "-q", env=env,
    )  # fmt: skip
    assert bad.returncode != 0 and "No TreeHop model" in bad.stderr


def test_all_questions_trained_on_is_a_clear_error(small_hotpot: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    TreeHopModel(TreeHopConfig(dim=384, attn_size=8, mlp_size=8)).save(folder)
    ids = [json.loads(x)["_id"] for x in (small_hotpot / "queries.jsonl").read_text().splitlines()]
    (folder / "data.json").write_text(json.dumps({"train_ids": ids}))
    with pytest.raises(InputError, match="No question"):
        evaluate_multihop(small_hotpot, "dev", model_dir=folder, llm_baseline=False, progress=False)


class _PointsAt:
    """Stands in for a trained model: its next query is a fixed vector (a real model cannot be made to do this)."""

    def __init__(self, target: np.ndarray) -> None:
        self.target = target

    def next_queries(self, q: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.repeat(self.target.reshape(1, -1), len(c), axis=0)


def test_second_hop_counts_what_each_next_query_finds() -> None:
    # Five passages on orthogonal axes; the question is near passages 0 and 1, far from 4, its second document.
    matrix = np.eye(5, dtype=np.float32)
    question = np.array([0.8, 0.6, 0.0, 0.0, 0.0], dtype=np.float32)
    search = MatrixSearch(np.arange(5), matrix)
    doc = {0: "a", 1: "x", 2: "y", 3: "z", 4: "b"}

    def docs(ids: list[int]) -> list[str]:
        return list(dict.fromkeys(doc[int(i)] for i in ids))

    def second_hop(relevant: set[str], top_n: int) -> dict[str, Any] | None:
        model: Any = _PointsAt(matrix[4])
        return second_hop_from_supporting(model, question, search.search, search.vectors, docs, relevant, top_n)

    assert second_hop({"a", "b"}, 1) == {"missing": 1, "question": 0, "treehop": 1}
    assert second_hop({"a", "x"}, 2) is None  # the first hop found every document
