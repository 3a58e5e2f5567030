"""The full LLM recipes as a user runs them: `hopmem finetune reranker` on the packaged SmolLM2-135M-Instruct (not the
tiny stand-in of the default run), then `hopmem eval rerank` on the adapter it saved, on a tiny HotpotQA cut. Budgets
are small (a few GRPO steps and stage-2 groups), so these check the whole path, not quality: minutes on 2 cores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the finetune extra is not installed")

from safetensors.torch import load_file

from tests.conftest import run_hopmem
from tests.finetune.test_reranker_data import make_tiny_hotpot


@pytest.fixture(scope="module")
def tiny(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_hotpot(shared_data / "hotpotqa", tmp_path_factory.mktemp("tiny-hotpot-full"), n_dev=2)


def _trained_b(folder: Path) -> float:
    """Largest |weight| of the LoRA B matrices, which peft initialises to zero: above zero only after training."""
    weights = load_file(str(folder / "adapter_model.safetensors"))
    return max(float(v.abs().max()) for k, v in weights.items() if "lora_B" in k)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("recipe", "budget", "eval_args"),
    [
        ("prorank", ["--grpo-steps", "2", "--stage2-groups", "3"], ["--reranker", "prorank", "--adapter"]),
        ("rank-r1", ["--grpo-steps", "2", "--set-size", "3"], ["--reranker", "rank-r1", "--rank-r1-adapter"]),
    ],
)
def test_a_full_recipe_on_smollm2_saves_an_adapter_that_eval_rerank_measures(
    recipe: str, budget: list[str], eval_args: list[str], tiny: Path, tmp_path: Path
) -> None:
    out = tmp_path / recipe
    env = {"HOPMEM_CACHE_DIR": str(tmp_path / "cache")}
    done = run_hopmem(
        "finetune", "reranker", "--recipe", recipe, "--dataset", str(tiny), "--output", str(out),
        "--prompts-per-step", "1", "--generations", "4", "--dev-queries", "2", "--passage-tokens", "48", *budget, "-q",
        env=env, timeout=1500,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["base_model"] == "SmolLM2-135M-Instruct"
    rewards = (metrics["stage1"] if recipe == "prorank" else metrics["grpo"])["rewards"]
    assert rewards["completions"] == 2 * 4
    if recipe == "prorank":
        assert metrics["stage2"]["steps"] == 3
    assert _trained_b(out) > 0.0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "SmolLM2-135M-Instruct"  # not this machine's cache path
    assert "dev pairs" in done.stdout and str(out) in done.stdout

    report_path = tmp_path / "eval.json"
    done = run_hopmem(
        "eval", "rerank", "--dataset", str(tiny), "--split", "dev", "--depth", "4", *eval_args, str(out),
        "--reranker", "none", "--json", str(report_path), "-q",
        env=env, timeout=1500,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["reranker"] == recipe and report["n_queries"] == 2
    rows = {r["reranker"]: r for r in report["results"]}
    assert set(rows) == {recipe, "none"}
    assert all(0.0 <= v <= 1.0 for v in rows[recipe]["metrics"].values())
    log = [json.loads(ln) for ln in (tmp_path / report["per_query_log"]).read_text().splitlines()]
    for entry in log:  # a reranker only reorders the same four candidates
        assert sorted(entry[f"hybrid+{recipe}"]["ranked"]) == sorted(entry["hybrid+none"]["ranked"])
