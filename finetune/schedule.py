"""The learning-rate schedule the recipes train with: linear warm-up, then linear decay to a floor.

One definition, so that the cross-encoder, prorank's stage 2 and the supervised warm-ups cannot drift apart; the
checkpoints of a resumed run store the scheduler's state, so its shape must not change between runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def warmup_then_decay(total: int, warmup: int, floor: float = 0.0) -> Callable[[int], float]:
    """The factor of the base learning rate at 0-based ``step`` of ``total``: ``(step + 1) / warmup`` during the
    warm-up, then falling linearly towards 0 at ``total``, never below ``floor``."""
    warmup = max(1, warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(floor, (total - step) / max(1, total - warmup))

    return factor


def linear_schedule(optimizer: Any, total: int, warmup: int, floor: float = 0.0) -> Any:
    """A torch ``LambdaLR`` over ``optimizer`` with :func:`warmup_then_decay`."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_then_decay(total, warmup, floor))
