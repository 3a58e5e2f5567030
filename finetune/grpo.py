"""One GRPO run with TRL's ``GRPOTrainer`` on a LoRA adapter, shared by the ``prorank`` and ``rank-r1`` recipes.

The trainer samples ``num_generations`` completions per prompt, scores them with the recipe's reward functions and
updates only the LoRA weights (a peft ``LoraConfig`` for a fresh adapter, or an existing trainable ``PeftModel``).
Generation goes through transformers (on a CPU training runs in float32). There is no vLLM generation: TRL 1.16's
server mode syncs weights to the vLLM server over NCCL, which needs a CUDA device on both sides
(``VLLMClient.init_communicator`` raises NotImplementedError otherwise), and its colocate mode runs vLLM inside the
trainer's process, whose torch and transformers the vllm wheels pin to other versions than hopmem's (docs/vllm.md).

Checkpoints are written every ``checkpoint_every`` steps under ``output_dir``; with ``resume`` a run continues from
the newest one (TRL restores model, optimiser, scheduler and data order).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hopmem.memory.errors import InputError, ModelNotAvailableError

log = logging.getLogger(__name__)

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class GRPOSettings:
    """The knobs of one GRPO stage (recorded in the recipe's ``metrics.json``).

    Args:
        steps: optimiser steps.
        prompts_per_step: distinct prompts per step; each is sampled ``num_generations`` times.
        num_generations: completions per prompt (GRPO's group).
        max_completion_length: tokens per completion.
        lr: learning rate of the LoRA weights.
        temperature: sampling temperature (high enough that a group's answers differ).
        beta: KL weight against the base model (0 skips the reference model, TRL's default).
        checkpoint_every: steps between checkpoints.
        scale_rewards: TRL's advantage scaling: ``group`` divides each group's centred rewards by their standard
            deviation (TRL's default), ``none`` leaves them as they are (Dr. GRPO). Scaling turns any difference
            inside a group into a full unit of advantage, so a reward that differs by a small cost (the decomposer's
            search cost between plans that find the same evidence) pushes as hard as one that differs by the task.
    """

    steps: int = 40
    prompts_per_step: int = 2
    num_generations: int = 4
    max_completion_length: int = 6
    lr: float = 5e-5
    temperature: float = 1.0
    beta: float = 0.0
    checkpoint_every: int = 20
    scale_rewards: Literal["group", "batch", "none"] = "group"


def lora_config(r: int, alpha: int, dropout: float, targets: Sequence[str] = LORA_TARGETS) -> Any:
    """A peft ``LoraConfig`` for a causal LM (no bias, no added modules)."""
    try:
        from peft import LoraConfig
    except ImportError as exc:
        raise ModelNotAvailableError("LoRA training needs peft: run `make install`.") from exc
    return LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets), bias="none", task_type="CAUSAL_LM"
    )


def _latest_checkpoint(folder: Path) -> str | None:
    steps = {int(p.name[len("checkpoint-") :]): p for p in folder.glob("checkpoint-*") if p.name[11:].isdigit()}
    return str(steps[max(steps)]) if steps else None


def run_grpo(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    reward_funcs: list[Callable[..., list[float]]],
    *,
    settings: GRPOSettings,
    output_dir: Path,
    peft_config: Any = None,
    seed: int = 0,
    resume: bool = False,
    progress: bool = True,
) -> tuple[Any, list[dict[str, Any]]]:
    """Train ``model`` with GRPO on ``rows`` (each a ``prompt`` in chat form plus the reward functions' columns).

    Args:
        model: a transformers causal LM (then ``peft_config`` adds a fresh adapter) or a trainable ``PeftModel``.
        tokenizer: its tokenizer (with a chat template; the pad token is set to EOS when missing).
        rows: the training prompts; cycled when there are fewer than the steps need.
        reward_funcs: TRL reward functions.
        settings: the stage's settings.
        output_dir: where TRL writes checkpoints.
        peft_config: a ``LoraConfig`` when ``model`` has no adapter yet.
        seed: seeds sampling and data order.
        resume: continue from the newest checkpoint in ``output_dir``.
        progress: TRL's progress bar.

    Returns:
        The trained ``PeftModel`` and TRL's log history (loss, rewards, reward std per step).
    """
    try:
        import torch
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as exc:
        raise ModelNotAvailableError("GRPO training needs trl and datasets: run `make install`.") from exc
    if not rows:
        raise InputError("GRPO needs at least one training prompt; the data sets gave none.")
    batch = settings.prompts_per_step * settings.num_generations
    needed = settings.steps * settings.prompts_per_step
    data = [rows[i % len(rows)] for i in range(max(needed, len(rows)))]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    output_dir.mkdir(parents=True, exist_ok=True)
    args = GRPOConfig(
        output_dir=str(output_dir),
        max_steps=settings.steps,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=1,
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        learning_rate=settings.lr,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=min(5, max(0, settings.steps // 10)),
        temperature=settings.temperature,
        beta=settings.beta,
        scale_rewards=settings.scale_rewards,
        gradient_checkpointing=False,
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        fp16=False,
        use_vllm=False,
        logging_steps=1,
        save_strategy="steps",
        save_steps=max(1, settings.checkpoint_every),
        save_total_limit=1,
        report_to=[],
        seed=seed,
        data_seed=seed,
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=list(reward_funcs),  # type: ignore[arg-type]
        args=args,
        train_dataset=Dataset.from_list(data),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    checkpoint = _latest_checkpoint(output_dir) if resume else None
    if checkpoint:
        log.info("resuming GRPO from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    return trainer.model, list(trainer.state.log_history)


def grpo_log(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps of TRL's log history that carry a reward or a loss, floats rounded to 4 places (for the report)."""
    return [
        {k: round(v, 4) if isinstance(v, float) else v for k, v in entry.items()}
        for entry in history
        if "reward" in entry or "loss" in entry
    ]
