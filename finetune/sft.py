"""Supervised warm-up of a LoRA adapter on prompt -> reply pairs (the loss on the reply's tokens only).

GRPO can only reinforce what the model already writes now and then. SmolLM2-135M never wrote rank-r1's
``<think>..</think><answer>[k]</answer>`` reply by itself (35 of 35 dev selections fell back), so GRPO had nothing to
reinforce; a short supervised stage on replies built from the qrels teaches the format first (as R1-style recipes
start from a cold-start SFT). This is a small loop rather than TRL's ``SFTTrainer``: the data is a few hundred chat
prompts with one short reply each, the loss mask is one slice, and the adapter must stay the same ``PeftModel`` that
GRPO continues to train afterwards.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

from hopmem.finetune.schedule import linear_schedule
from hopmem.memory.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SFTSettings:
    """The knobs of the supervised warm-up (recorded in the recipe's ``metrics.json``).

    Args:
        steps: optimiser steps (0 skips the stage).
        batch_size: examples per step.
        lr: learning rate of the LoRA weights (AdamW, linear warm-up then decay).
    """

    steps: int = 60
    batch_size: int = 2
    lr: float = 2e-4


def encode_example(tokenizer: Any, prompt: list[dict[str, str]], reply: str) -> tuple[list[int], int]:
    """Token ids of the chat prompt (with the generation prompt) followed by ``reply`` and the end-of-turn token,
    and where the reply starts (the loss covers the tokens from there on)."""
    encoded = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
    head = [int(t) for t in encoded["input_ids"]]
    tail = tokenizer(reply + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
    return head + [int(t) for t in tail], len(head)


def run_sft(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    settings: SFTSettings,
    *,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` (a trainable ``PeftModel``) on ``rows`` (each a ``prompt`` in chat form and a ``reply``).

    Rows are cycled in a seeded order. Returns the steps and the loss history (mean token cross-entropy per step).

    Raises:
        InputError: without rows.
    """
    import torch
    from tqdm.auto import tqdm

    if not rows:
        raise InputError("The supervised warm-up needs at least one example; the data sets gave none.")
    examples = [encode_example(tokenizer, r["prompt"], r["reply"]) for r in rows]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < settings.steps * settings.batch_size:
        epoch = list(range(len(examples)))
        rng.shuffle(epoch)
        order += epoch
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=0.0)
    scheduler = linear_schedule(optimizer, settings.steps, settings.steps // 10, floor=0.05)
    losses: list[float] = []
    model.train()
    bar = tqdm(range(settings.steps), desc="supervised warm-up", unit="step", disable=not progress)
    for step in bar:
        batch = [examples[i] for i in order[step * settings.batch_size : (step + 1) * settings.batch_size]]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), int(pad), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for row, (ids, start) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
            labels[row, start : len(ids)] = torch.tensor(ids[start:], dtype=torch.long)
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.4f}")
    model.eval()
    return {"steps": settings.steps, "examples": len(examples), "loss_history": [round(v, 4) for v in losses]}
