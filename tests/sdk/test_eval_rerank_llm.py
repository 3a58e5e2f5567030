"""``hopmem eval rerank`` with the LLM rerankers: a LoRA adapter on a tiny random Llama (SmolLM2's tokenizer) is
compared with its own base on the same candidates, the report records the adapter, and the PNG plot is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("peft", reason="the finetune extra is not installed")

from hopmem.agents.rerank import load_reranker
from hopmem.agents.rerank.pointwise import PointwiseLLMReranker
from hopmem.eval.rerank import evaluate_rerank
from hopmem.settings import get_settings
from tests.conftest import save_random_adapter
from tests.finetune.test_reranker_data import make_tiny_hotpot


@pytest.fixture(scope="module")
def tiny(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_hotpot(shared_data / "hotpotqa", tmp_path_factory.mktemp("tiny-hotpot-llm"), n_dev=3)


@pytest.fixture(scope="module")
def tiny_adapter(tiny_causal_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained LoRA adapter whose B matrices are random (so it changes scores), saved like a trained one."""
    from hopmem.agents.llm.transformers_llm import TransformersLLM

    folder = tmp_path_factory.mktemp("adapter")
    record = {"recipe": "prorank", "base_model": str(tiny_causal_lm), "passage_tokens": 32, "query_tokens": 16}
    save_random_adapter(TransformersLLM(str(tiny_causal_lm)).model, folder, record)
    return folder


def test_adapter_and_base_are_compared_on_the_same_candidates(tiny: Path, tiny_adapter: Path, tmp_path: Path) -> None:
    settings = get_settings(cache_dir=tmp_path / "cache")
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    report = evaluate_rerank(
        tiny, "dev", ["prorank", "prorank-base", "none"], depth=6, settings=settings, adapter=tiny_adapter,
        json_out=out, plot_out=png, progress=False,
    )  # fmt: skip
    assert report["reranker"] == "prorank" and report["n_queries"] == 3
    assert [r["reranker"] for r in report["results"]] == ["prorank", "prorank-base", "none"]
    info = report["adapters"]["prorank"]
    assert info["folder"] == str(tiny_adapter) and info["base_model"] and info["passage_tokens"] == 32
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    log = [json.loads(ln) for ln in (tmp_path / report["per_query_log"]).read_text().splitlines()]
    orders = [(e["hybrid+prorank"]["ranked"], e["hybrid+prorank-base"]["ranked"]) for e in log]
    assert all(sorted(a) == sorted(b) for a, b in orders)  # same candidates, only reordered
    assert any(a != b for a, b in orders)  # the adapter changes the order


def test_load_reranker_finds_the_adapter_and_its_base(tiny_adapter: Path, tmp_path: Path) -> None:
    tuned = load_reranker("prorank", tiny_adapter, cache_dir=tmp_path)
    base = load_reranker("prorank-base", tiny_adapter, cache_dir=tmp_path)
    assert isinstance(tuned, PointwiseLLMReranker) and isinstance(base, PointwiseLLMReranker)
    assert tuned.passage_tokens == base.passage_tokens == 32
    docs = ["The Seine flows through Paris.", "Bread is baked in an oven.", "Paris is in France."]
    tuned_scores = tuned.score("Which river flows through Paris?", docs)
    assert tuned_scores != base.score("Which river flows through Paris?", docs)
    # Scores do not depend on batching (left padding with explicit positions).
    one_by_one = [tuned.score("Which river flows through Paris?", [d])[0] for d in docs]
    assert one_by_one == pytest.approx(tuned_scores, abs=1e-4)


def test_merging_the_adapter_for_scoring_keeps_the_scores(tiny_adapter: Path) -> None:
    docs = ["The Seine flows through Paris.", "Bread is baked in an oven."]
    merged = PointwiseLLMReranker(adapter=tiny_adapter)
    unmerged = PointwiseLLMReranker(adapter=tiny_adapter, merge_adapter=False)
    assert type(merged.model).__name__ != type(unmerged.model).__name__  # a plain model vs a PeftModel
    query = "Which river flows through Paris?"
    assert merged.score(query, docs) == pytest.approx(unmerged.score(query, docs), abs=1e-4)


def test_a_blended_adapter_is_evaluated_with_and_without_its_blend(
    tiny: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    import shutil

    folder = tmp_path / "blended"
    shutil.copytree(tiny_adapter, folder)
    record = json.loads((folder / "hopmem_reranker.json").read_text())
    (folder / "hopmem_reranker.json").write_text(json.dumps({**record, "blend": 1.0}))  # the given order alone
    settings = get_settings(cache_dir=tmp_path / "cache")
    report = evaluate_rerank(
        tiny, "dev", ["prorank", "prorank-alone", "none"], depth=6, settings=settings, adapter=folder, progress=False,
        json_out=tmp_path / "r.json",
    )  # fmt: skip
    rows = {r["reranker"]: r for r in report["results"]}
    assert rows["prorank"]["metrics"] == rows["none"]["metrics"]  # blend 1: the hybrid order, as the agent gets it
    log = [json.loads(ln) for ln in (tmp_path / report["per_query_log"]).read_text().splitlines()]
    assert any(e["hybrid+prorank-alone"]["ranked"] != e["hybrid+none"]["ranked"] for e in log)  # the model alone
