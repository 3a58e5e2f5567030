"""``hopmem eval qa``: the agent end to end on a small HotpotQA cut, variants side by side, real SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hopmem.eval.qa import comparison_variants, evaluate_qa, variant_from_options
from hopmem.memory.errors import InputError
from hopmem.settings import get_settings
from tests.conftest import run_hopmem


def test_variants_are_named_by_what_they_change() -> None:
    base = variant_from_options(decompose=True, planner="llm", fusion="rsf")
    names = [v.name for v in comparison_variants(base)]
    assert names[0] == "aqr+rsf"
    assert set(names[1:]) == {
        "no-decompose+rsf", "aqr-rules+rsf", "aqr+rrf", "aqr+rsf+rerank-cross-encoder", "aqr+rsf+no-treehop"
    }  # fmt: skip
    swapped = [v.name for v in comparison_variants(base, default_reranker="cross-encoder")]
    assert "aqr+rsf+rerank-none" in swapped
    off = variant_from_options(decompose=False, planner="llm", fusion="rrf", reranker="none", treehop=False)
    assert off.changes == {
        "decompose": False, "planner": "llm", "agent_fusion": "rrf", "reranker": "none", "treehop_hops": 1
    }  # fmt: skip
    assert "aqr-rules+rsf" not in [v.name for v in comparison_variants(off)]
    some = [v.name for v in comparison_variants(base, pieces=["decompose", "fusion"])]
    assert some == ["aqr+rsf", "no-decompose+rsf", "aqr+rrf"]
    with pytest.raises(InputError, match="Unknown piece"):
        comparison_variants(base, pieces=["colour"])


def test_variant_planner_defaults_to_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOPMEM_PLANNER", raising=False)
    assert variant_from_options().changes["planner"] == get_settings().planner == "rules"
    assert variant_from_options().name == "aqr-rules+rsf"
    monkeypatch.setenv("HOPMEM_PLANNER", "llm")
    assert variant_from_options().changes["planner"] == "llm"
    assert variant_from_options().name == "aqr+rsf"


def test_report_shape_metrics_and_logs(small_hotpot: Path, tmp_path: Path, hotpot_cache: Path) -> None:
    settings = get_settings(cache_dir=hotpot_cache, reranker="none")
    out = tmp_path / "qa.json"
    variants = [variant_from_options(decompose=False, planner="llm"), variant_from_options(planner="llm")]
    report = evaluate_qa(
        small_hotpot, "dev", variants=variants, settings=settings, json_out=out, max_queries=2, progress=False
    )
    assert json.loads(out.read_text()) == report
    assert {"dataset", "split", "variant", "n_queries", "metrics", "latency_ms", "llm_calls_per_query"} <= set(report)
    assert report["variant"] == "no-decompose+rsf" and report["n_queries"] == 2
    assert [v["variant"] for v in report["variants"]] == ["no-decompose+rsf", "aqr+rsf"]
    for row in report["variants"]:
        m = row["metrics"]
        assert set(m) == {"em", "f1", "recall@5", "recall@10"}
        assert all(0.0 <= v <= 1.0 for v in m.values())
        assert m["recall@10"] >= m["recall@5"] > 0  # the cut's supporting paragraphs are findable
        assert row["errors"] == 0 and row["latency_ms"]["p50"] > 0
        assert row["rerankers"] == {"none": 2}  # what the rerank step ran, as the trace says
    # Without decomposition the planner makes no LLM call: only the answer does; with AQR the plan adds calls.
    assert report["variants"][0]["llm_calls_per_query"] == 1.0
    assert report["variants"][1]["llm_calls_per_query"] > 1.0
    lines = [json.loads(x) for x in out.with_name("qa.queries.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and {ln["variant"] for ln in lines} == {"no-decompose+rsf", "aqr+rsf"}
    assert all(ln["gold"] and len(ln["ranking"]) <= 10 for ln in lines)


def test_variants_run_on_copies_so_write_back_never_reaches_the_cached_corpus(
    small_hotpot: Path, hotpot_cache: Path
) -> None:
    import hashlib

    settings = get_settings(cache_dir=hotpot_cache, reranker="none", llm_backend="none")
    variants = [variant_from_options()]
    off = evaluate_qa(small_hotpot, "dev", variants=variants, settings=settings, max_queries=2, progress=False)
    assert off["remember"] is False and off["llm"] is None
    (cached,) = (hotpot_cache / "beir").glob("*.sqlite")  # indexed once into the cache

    def digest() -> str:
        return hashlib.sha256(cached.read_bytes()).hexdigest()

    before = digest()
    on = evaluate_qa(
        small_hotpot, "dev", variants=variants, settings=settings, max_queries=2, remember=True, progress=False
    )
    assert on["remember"] is True and on["variants"][0]["errors"] == 0
    assert digest() == before  # the answers were written into the variant's copy, not into the cache


def test_bad_input_is_refused(small_hotpot: Path, tmp_path: Path, hotpot_cache: Path) -> None:
    settings = get_settings(cache_dir=hotpot_cache, llm_backend="none")
    with pytest.raises(InputError, match="variant"):
        evaluate_qa(small_hotpot, "dev", variants=[], settings=settings)
    with pytest.raises(InputError):
        evaluate_qa(tmp_path, "dev", variants=[variant_from_options()], settings=settings)


def test_cli_prints_one_row_per_variant(small_hotpot: Path, tmp_path: Path, hotpot_cache: Path) -> None:
    out = tmp_path / "cli.json"
    result = run_hopmem(
        "eval", "qa", "--dataset", str(small_hotpot), "--split", "dev", "--no-decompose", "--reranker", "none",
        "--max-queries", "2", "--json", str(out), "-q",
        env={"HOPMEM_CACHE_DIR": str(hotpot_cache), "HOPMEM_LLM_BACKEND": "none"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no-decompose+rsf+rerank-none" in result.stdout
    assert json.loads(out.read_text())["n_queries"] == 2


def test_planners_compare_in_one_run_with_fallbacks_and_planning_calls_counted(
    small_hotpot: Path, hotpot_cache: Path, tiny_causal_lm: Path, tmp_path: Path
) -> None:
    """rules and tuned side by side (extractive answers): the tuned planner's model is an untrained LoRA on a tiny
    random Llama, so every plan falls back to the rules; its one planning call per question is counted."""
    import transformers
    from peft import get_peft_model

    from hopmem.agents.tuned_planner import RECORD_FILE
    from hopmem.finetune.grpo import lora_config

    adapter = tmp_path / "decomposer"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_causal_lm))
    get_peft_model(model, lora_config(2, 4, 0.0, ("q_proj", "v_proj"))).save_pretrained(str(adapter))
    (adapter / RECORD_FILE).write_text(json.dumps({"base_model": str(tiny_causal_lm)}))
    settings = get_settings(
        cache_dir=hotpot_cache, reranker="none", llm_backend="none", treehop_hops=1, planner_adapter=str(adapter)
    )
    variants = [
        variant_from_options(planner="rules", treehop=False),
        variant_from_options(planner="tuned", treehop=False),
    ]
    report = evaluate_qa(small_hotpot, "dev", variants=variants, settings=settings, max_queries=2, progress=False)
    rules, tuned = report["variants"]
    assert (rules["variant"], tuned["variant"]) == ("aqr-rules+rsf+no-treehop", "aqr-tuned+rsf+no-treehop")
    assert rules["plan_sources"] == {"rules": 2} and rules["llm_calls_per_query"] == 0.0
    assert tuned["plan_sources"] == {"fallback": 2} and tuned["llm_calls_per_query"] == 1.0
    assert tuned["planner_model"].endswith("decomposer")
    # falling back to the rules, the tuned variant retrieves what the rules do
    assert tuned["metrics"]["recall@10"] == rules["metrics"]["recall@10"]
    assert tuned["plan_modes"] == rules["plan_modes"]


def test_eval_qa_refuses_an_unknown_planner() -> None:
    result = run_hopmem("eval", "qa", "--dataset", ".", "--planner", "rules,oracle")
    assert result.returncode != 0 and "unknown planner 'oracle'" in result.stderr
