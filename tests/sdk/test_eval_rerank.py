"""``hopmem eval rerank`` and ``hopmem finetune reranker`` run as processes on a tiny real data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopmem.eval.rerank import evaluate_rerank
from hopmem.settings import get_settings
from tests.conftest import run_hopmem
from tests.finetune.test_reranker_data import make_tiny_hotpot

KEYS = {"dataset", "split", "reranker", "n_queries", "metrics", "latency_ms"}


@pytest.fixture(scope="module")
def tiny(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_hotpot(shared_data / "hotpotqa", tmp_path_factory.mktemp("tiny-hotpot"), n_dev=4)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache per module: the tiny corpus is indexed once."""
    return tmp_path_factory.mktemp("cache")


@pytest.mark.slow  # three retrievals and a cross-encoder in a fresh process: 30-150 s on 2 shared cores
def test_eval_rerank_compares_rerankers_on_the_same_candidates(tiny: Path, tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "report.json"
    env = {"HOPMEM_CACHE_DIR": str(cache)}
    done = run_hopmem(
        "eval", "rerank", "--dataset", str(tiny), "--split", "dev", "--reranker", "none",
        "--reranker", "cross-encoder-untrained", "--baselines", "--depth", "8", "--json", str(out), "-q",
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert set(report) >= KEYS and report["reranker"] == "none" and report["n_queries"] == 4
    assert set(report["metrics"]) == {"ndcg@10", "recall@10", "mrr@10"}
    assert set(report["latency_ms"]) == {"p50", "p95"}
    rows = {(r["candidates"], r["reranker"]): r for r in report["results"]}
    assert set(rows) == {("hybrid", "none"), ("hybrid", "cross-encoder-untrained"), ("bm25", "none"), ("dense", "none")}
    assert all(set(r) >= KEYS for r in rows.values())
    assert report["machine"]["cpus"] and report["dataset_sha256"] and report["settings"]["embedder"]
    assert "eval rerank" in report["command"]
    # Reranking only reorders: both rows of the hybrid candidates find the same documents among all 8.
    log = [json.loads(ln) for ln in (tmp_path / report["per_query_log"]).read_text().splitlines()]
    assert len(log) == 4
    for entry in log:
        none, reranked = entry["hybrid+none"], entry["hybrid+cross-encoder-untrained"]
        assert none["candidate_recall"] == reranked["candidate_recall"]
        assert sorted(none["ranked"]) == sorted(reranked["ranked"]) and len(none["ranked"]) == 8
    assert "hybrid" in done.stdout and "cross-encoder-untrained" in done.stdout


def test_none_keeps_the_retrieval_order(tiny: Path, cache: Path) -> None:
    """`--reranker none` on bm25 candidates scores exactly what bm25 retrieval scores."""
    settings = get_settings(cache_dir=cache)
    report = evaluate_rerank(tiny, "dev", ["none"], candidates="bm25", depth=10, settings=settings, progress=False)
    from hopmem.eval.retrieval import evaluate_retrieval

    direct = evaluate_retrieval(tiny, "dev", "bm25", settings=settings, progress=False)
    for metric in ("ndcg@10", "recall@10", "mrr@10"):
        assert report["metrics"][metric] == pytest.approx(direct["metrics"][metric], abs=1e-4)


def test_missing_cross_encoder_and_unknown_recipe_fail_in_one_sentence(tiny: Path, tmp_path: Path) -> None:
    env = {"HOPMEM_CACHE_DIR": str(tmp_path / "empty-cache")}
    (tmp_path / "no-model").mkdir()  # the default one ships in the package, so only a named folder can lack it
    done = run_hopmem(
        "eval",
        "rerank",
        "--dataset",
        str(tiny),
        "--reranker",
        "cross-encoder",
        "--model",
        str(tmp_path / "no-model"),
        env=env,
    )
    assert done.returncode == 2 and str(tmp_path / "no-model") in done.stderr
    assert "hopmem finetune reranker --recipe cross-encoder" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_hopmem("finetune", "reranker", "--recipe", "magic", "--dataset", str(tiny), env=env)
    assert done.returncode == 2 and "prorank, rank-r1, cross-encoder" in done.stderr and "Traceback" not in done.stderr
    done = run_hopmem("eval", "rerank", "--dataset", str(tiny), "--reranker", "rank-r1", env=env)  # none shipped
    assert done.returncode == 2 and "--recipe rank-r1" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_finetune_then_eval_as_processes(tiny: Path, tmp_path: Path, cache: Path) -> None:
    env = {"HOPMEM_CACHE_DIR": str(cache)}
    model = tmp_path / "ce"
    args = ["--dataset", str(tiny), "--output", str(model), "--max-train-pairs", "10", "--max-length", "32", "-q"]
    done = run_hopmem("finetune", "reranker", "--recipe", "cross-encoder", *args, env=env)
    assert done.returncode == 0, done.stderr
    assert "saved to" in done.stdout and (model / "README.md").is_file()
    again = run_hopmem("finetune", "reranker", "--recipe", "cross-encoder", *args, "--if-missing", env=env)
    assert again.returncode == 0 and "already trained" in again.stdout
    (model / "hopmem_cross_encoder.json").unlink()  # as a model of the earlier recipe: replaced, not kept
    again = run_hopmem("finetune", "reranker", "--recipe", "cross-encoder", *args, "--if-missing", env=env)
    assert again.returncode == 0 and "earlier recipe" in again.stdout and "saved to" in again.stdout
    assert (model / "hopmem_cross_encoder.json").is_file()
    out = tmp_path / "r.json"
    done = run_hopmem(
        "eval", "rerank", "--dataset", str(tiny), "--split", "dev", "--reranker", "cross-encoder",
        "--reranker", "none", "--model", str(model), "--depth", "8", "--json", str(out), "-q", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["reranker"] == "cross-encoder" and report["model"]["folder"] == str(model)
    assert report["excluded_trained_queries"] == 0  # dev queries were never trained on


def test_if_missing_counts_a_cross_encoder_only_with_its_blend_weight(tmp_path: Path) -> None:
    from hopmem.app.finetune_cli import _has_model

    folder = tmp_path / "ce"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    assert not _has_model("cross-encoder", folder)  # an earlier recipe's model: --if-missing trains it again
    (folder / "hopmem_cross_encoder.json").write_text('{"blend": 0.7}')
    assert _has_model("cross-encoder", folder)
