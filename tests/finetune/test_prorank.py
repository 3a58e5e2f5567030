"""The prorank recipe on a tiny random Llama with SmolLM2's tokenizer: two real GRPO steps (TRL GRPOTrainer + peft
LoRA) and two real stage-2 steps change the adapter's weights, GRPO sees groups whose rewards differ, and a whole
run writes an adapter that the pointwise reranker loads and that scores differently from its base."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl", reason="the finetune extra is not installed")
pytest.importorskip("peft", reason="the finetune extra is not installed")

import torch

from hopmem.agents.llm.transformers_llm import TransformersLLM
from hopmem.agents.rerank.pointwise import PointwiseLLMReranker
from hopmem.finetune.grpo import GRPOSettings, lora_config, run_grpo
from hopmem.finetune.prorank import ProRankConfig, ScoreGroup, group_loss, run_stage2, stage1_rows, train_prorank
from hopmem.finetune.reranker_data import RerankPair
from hopmem.finetune.rewards import RewardLog, pointwise_reward_func
from hopmem.memory.errors import InputError
from tests.finetune.test_reranker_data import make_tiny_hotpot


def _pairs() -> list[RerankPair]:
    texts = [
        ("q1", "Which river flows through Paris?", "The Seine flows through Paris.", 1.0),
        ("q1", "Which river flows through Paris?", "Bread is baked in an oven.", 0.0),
        ("q2", "Who wrote Hamlet?", "Hamlet is a tragedy by William Shakespeare.", 1.0),
        ("q2", "Who wrote Hamlet?", "The Danube is a long river.", 0.0),
    ]
    return [
        RerankPair(q, query, f"d{i}", text, label, "positive" if label else "hard-negative")
        for i, (q, query, text, label) in enumerate(texts)
    ]


def _lora_weights(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def _load(folder: Path) -> tuple[Any, Any]:
    llm = TransformersLLM(str(folder))
    return llm.model, llm.tokenizer


def test_two_grpo_steps_change_the_adapter_and_see_rewards_that_vary(tiny_causal_lm: Path, tmp_path: Path) -> None:
    model, tokenizer = _load(tiny_causal_lm)
    config = ProRankConfig(datasets=(), output=str(tmp_path / "out"), passage_tokens=24, query_tokens=16)
    rows = stage1_rows(_pairs(), tokenizer, config)
    assert {r["label"] for r in rows[:2]} == {0.0, 1.0}  # each step sees both labels
    log = RewardLog(group_size=4)
    settings = GRPOSettings(steps=2, prompts_per_step=2, num_generations=4, max_completion_length=3, lr=5e-3)
    torch.manual_seed(0)
    trained, history = run_grpo(
        model,
        tokenizer,
        rows,
        [pointwise_reward_func(log)],
        settings=settings,
        output_dir=tmp_path / "grpo",
        peft_config=lora_config(4, 8, 0.0, ("q_proj", "v_proj")),
        seed=0,
        progress=False,
    )
    summary = log.summary()
    assert summary["completions"] == 2 * 2 * 4
    assert summary["groups_with_variance"] > 0, log.rewards  # a random model answers differently within a group
    # LoRA's B matrices start at zero: any non-zero entry is the optimiser's doing.
    b_mats = {n: p for n, p in trained.named_parameters() if "lora_B" in n}
    assert b_mats and any(float(p.detach().abs().sum()) > 0 for p in b_mats.values())
    assert any("loss" in entry for entry in history)


def test_two_stage2_steps_change_the_adapter_and_lower_the_group_loss(tiny_causal_lm: Path, tmp_path: Path) -> None:
    from peft import get_peft_model

    model, tokenizer = _load(tiny_causal_lm)
    torch.manual_seed(0)
    model = get_peft_model(model, lora_config(4, 8, 0.0, ("q_proj", "v_proj")))
    config = ProRankConfig(
        datasets=(), output=str(tmp_path), passage_tokens=24, query_tokens=16, stage2_lr=5e-2, checkpoint_every=1
    )
    group = ScoreGroup("Who wrote Hamlet?", ("Hamlet is by Shakespeare.", "Rivers flow.", "Bread."), (1.0, 0.0, 0.0))
    before = _lora_weights(model)
    report = run_stage2(model, tokenizer, [group, group], config, checkpoint=tmp_path / "s2.pt", progress=False)
    after = _lora_weights(model)
    assert report["steps"] == 2 and len(report["loss_history"]) == 2
    assert any(not torch.equal(before[n], after[n]) for n in before)
    assert report["loss_history"][1] < report["loss_history"][0]
    assert (tmp_path / "s2.pt").is_file()  # a checkpoint after step 1 (not after the last)
    from dataclasses import replace

    resumed = run_stage2(
        model, tokenizer, [group, group], replace(config, resume=True), checkpoint=tmp_path / "s2.pt", progress=False
    )
    assert resumed["resumed_from_step"] == 1 and len(resumed["loss_history"]) == 2
    assert resumed["loss_history"][0] == report["loss_history"][0]  # step 1's loss comes from the checkpoint


def test_group_losses_prefer_the_positive_and_reject_unknown_kinds() -> None:
    labels = torch.tensor([1.0, 0.0, 0.0])
    good, bad = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 3.0, 0.0])
    for kind in ("listwise", "pairwise"):
        assert float(group_loss(good, labels, kind)) < float(group_loss(bad, labels, kind))
    with pytest.raises(InputError, match="listwise or pairwise"):
        group_loss(good, labels, "pointwise")


@pytest.fixture(scope="module")
def tiny(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_hotpot(shared_data / "hotpotqa", tmp_path_factory.mktemp("tiny-hotpot-prorank"))


def test_a_whole_run_saves_an_adapter_the_reranker_loads(
    tiny: Path, tiny_causal_lm: Path, tmp_path: Path, embedder: Any
) -> None:
    out = tmp_path / "prorank"
    config = ProRankConfig(
        datasets=(str(tiny),),
        output=str(out),
        base_model=str(tiny_causal_lm),
        passage_tokens=32,
        query_tokens=16,
        lora_r=4,
        lora_alpha=8,
        n_negatives=2,
        dev_queries=2,
        stage1=GRPOSettings(steps=2, prompts_per_step=1, num_generations=4, max_completion_length=3, lr=5e-3),
        stage2_lr=5e-3,
        max_stage2_groups=3,
        distill_groups=2,  # soft labels from the shipped cross-encoder (the cache here holds none of the user's)
    )
    report = train_prorank(
        config, embedder, cache_dir=tmp_path / "cache", chunk_size=400, chunk_overlap=0, progress=False
    )
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "hopmem_reranker.json",
        "metrics.json",
        "README.md",
    ):
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists()
    assert report["stage1"]["rewards"]["completions"] == 2 * 4
    assert report["stage2"]["steps"] == 3 + 2 and report["stage2"]["distill_groups"] == 2
    assert "distillation" in (out / "README.md").read_text()
    data = json.loads((out / "data.json").read_text())
    assert data["datasets"][0]["train_ids"] and not set(data["datasets"][0]["train_ids"]) & set(
        data["datasets"][0]["dev_ids"]
    )
    tuned = PointwiseLLMReranker(adapter=out)
    assert tuned.passage_tokens == 32 and tuned.name == "prorank"
    base = PointwiseLLMReranker(str(tiny_causal_lm))
    docs = ["The Seine flows through Paris.", "Bread is baked in an oven."]
    assert tuned.score("Which river flows through Paris?", docs) != base.score("Which river flows through Paris?", docs)
    # The blend weight was chosen on held-out training queries, saved with the adapter and applied by the reranker.
    blend = report["blend"]
    assert blend["chosen_on"].startswith("1 held-out training queries") and set(blend["ndcg@10"]) >= {"0", "1"}
    record = json.loads((out / "hopmem_reranker.json").read_text())
    assert record["blend"] == blend["weight"] and PointwiseLLMReranker(adapter=out).blend == blend["weight"]
    assert data["datasets"][0]["holdout_ids"] and not set(data["datasets"][0]["holdout_ids"]) & set(
        data["datasets"][0]["train_ids"]
    )
    assert "Blend with the candidates' order" in (out / "README.md").read_text()
