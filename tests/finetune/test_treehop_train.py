"""A real (tiny) TreeHop training run on HotpotQA questions with the packaged embedder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hopmem.agents.treehop_model import TreeHopModel
from hopmem.finetune.treehop_train import TreeHopTrainConfig, train_treehop


def test_training_saves_a_changed_model_with_card_and_data(
    small_hotpot: Path, tmp_path: Path, embedder, hotpot_cache: Path
) -> None:  # type: ignore[no-untyped-def]
    config = TreeHopTrainConfig(
        datasets=(str(small_hotpot),),
        output=str(tmp_path / "model"),
        holdout=6,
        val_fraction=0.2,
        test_fraction=0.2,
        epochs=3,
        patience=3,
        batch_size=8,
        n_hard=8,
        top_n=3,
        attn_size=16,
        mlp_size=16,
    )
    report = train_treehop(config, embedder, cache_dir=hotpot_cache, chunk_size=256, chunk_overlap=32, progress=False)
    folder = tmp_path / "model"
    model = TreeHopModel.load(folder)
    assert model.config.dim == embedder.dim and model.config.embedder == embedder.name
    assert report["chains"] > 0 and len(report["history"]) >= 1
    assert all(np.isfinite(h["loss"]) for h in report["history"])
    assert report["last_update_norm"] > 0  # training moved the update gate off its zero start
    # The best epoch is kept; when one improved on the start, the update gate is no longer the zero it starts from.
    best = report["validation_best"]
    assert best["recall"] >= report["validation_untrained"]["recall"]
    if best["epoch"] > 0:
        assert float(model.out.weight.abs().sum()) > 0
    data = json.loads((folder / "data.json").read_text())
    assert set(data["train_ids"]).isdisjoint(data["held_out_ids"])
    assert set(data["validation_ids"]).isdisjoint(data["held_out_ids"])
    assert len(data["held_out_ids"]) == 6
    # The test split (the agent's rule) is trained on by nobody and measured for both models after training.
    assert data["test_ids"] and set(data["test_ids"]).isdisjoint(set(data["train_ids"]) | set(data["validation_ids"]))
    assert report["test_trained"]["questions"] == len(data["test_ids"])
    from hopmem.agents.treehop_model import measured_choice

    use_trained, reason = measured_choice(report)
    assert report["choice"] == {"use": "trained" if use_trained else "untrained", "reason": reason}
    card = (folder / "README.md").read_text()
    assert "held out for evaluation" in card and "InfoNCE" in card and "The agent uses the" in card
    assert json.loads((folder / "metrics.json").read_text())["chains"] == report["chains"]
    # The indexed corpus is cached: a second run reuses the same store file.
    cached = list((hotpot_cache / "beir").glob("*.sqlite"))
    assert len(cached) == 1
