"""GRPO's ``scale_rewards``: with TRL's group scaling a tiny reward difference inside a group pushes as hard as a
large one; with ``none`` (Dr. GRPO) it pushes in proportion. Real TRL, a real tiny Llama, one step each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl", reason="the finetune extra is not installed")
pytest.importorskip("peft", reason="the finetune extra is not installed")

import torch

from hopmem.agents.llm.transformers_llm import TransformersLLM
from hopmem.finetune.grpo import GRPOSettings, lora_config, run_grpo


def _tiny_differences(completions: list[Any], **_: Any) -> list[float]:
    """Rewards 0, 0.001, 0.002, ... inside each batch: a search-cost-sized difference, nothing else."""
    return [0.001 * i for i in range(len(completions))]


def _grad_norm(tiny_causal_lm: Path, tmp_path: Path, scale: str) -> float:
    llm = TransformersLLM(str(tiny_causal_lm))
    rows = [{"prompt": [{"role": "user", "content": "Plan a search for the boiling point of water."}]}]
    settings = GRPOSettings(
        steps=1,
        prompts_per_step=1,
        num_generations=4,
        max_completion_length=6,
        lr=1e-3,
        scale_rewards=scale,  # type: ignore[arg-type]
    )
    torch.manual_seed(0)
    _, history = run_grpo(
        llm.model,
        llm.tokenizer,
        rows,
        [_tiny_differences],
        settings=settings,
        output_dir=tmp_path / scale,
        peft_config=lora_config(4, 8, 0.0, ("q_proj", "v_proj")),
        seed=0,
        progress=False,
    )
    return float(next(e["grad_norm"] for e in history if "grad_norm" in e))


def test_without_group_scaling_a_tiny_reward_difference_moves_the_policy_in_proportion(
    tiny_causal_lm: Path, tmp_path: Path
) -> None:
    scaled = _grad_norm(tiny_causal_lm, tmp_path, "group")
    unscaled = _grad_norm(tiny_causal_lm, tmp_path, "none")
    assert scaled > 0
    # group scaling divides differences of 0.001 by their deviation (about 0.0013): advantages near 1; none: 0.001
    assert unscaled < 0.05 * scaled, (scaled, unscaled)
