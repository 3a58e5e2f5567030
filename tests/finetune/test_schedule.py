"""The recipes' shared learning-rate schedule: the shape the cross-encoder, prorank and the warm-ups trained with."""

from __future__ import annotations

import pytest

from hopmem.finetune.schedule import linear_schedule, warmup_then_decay


def test_linear_warm_up_then_linear_decay_to_the_floor() -> None:
    factor = warmup_then_decay(total=20, warmup=4)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == 1.0 and factor(12) == pytest.approx(0.5) and factor(19) == pytest.approx(1 / 16)
    floored = warmup_then_decay(total=20, warmup=2, floor=0.1)
    assert floored(19) == 0.1 and floored(18) == pytest.approx(2 / 18) and floored(10) == pytest.approx(10 / 18)
    assert warmup_then_decay(total=3, warmup=0)(0) == 1.0  # a warm-up of 0 steps is one step, not a division by 0
    assert warmup_then_decay(total=1, warmup=1)(0) == 1.0


def test_the_torch_scheduler_applies_it_to_every_parameter_group() -> None:
    torch = pytest.importorskip("torch")
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.AdamW([{"params": params[:1], "lr": 1.0}, {"params": params[1:], "lr": 10.0}])
    scheduler = linear_schedule(optimizer, total=10, warmup=2)
    seen = []
    for _ in range(4):
        seen.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    assert seen == [[0.5, 5.0], [1.0, 10.0], [1.0, 10.0], [pytest.approx(0.875), pytest.approx(8.75)]]
