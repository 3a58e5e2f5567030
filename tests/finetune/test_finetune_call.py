"""``hopmem.finetune(...)``: the callable package over the recipes, and the TrainingRun it returns.

Real runs: TreeHop on the small HotpotQA cut (as tests/finetune/test_treehop_train.py) and prorank on a tiny random
Llama (as tests/finetune/test_prorank.py), both through the one call; the shipped models' folders are read back as
runs too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import hopmem
from hopmem.agents.treehop_model import packaged_model_dir
from hopmem.finetune import TrainingRun
from hopmem.memory.errors import InputError
from hopmem.settings import get_settings

REPO = Path(__file__).resolve().parents[2]
SHIPPED = {
    "cross-encoder": REPO / "agents" / "reranker_weights" / "cross-encoder",
    "prorank": REPO / "agents" / "reranker_weights" / "prorank",
    "treehop": packaged_model_dir(),
}


def test_the_package_is_callable_and_refuses_a_bad_recipe_in_one_sentence() -> None:
    assert callable(hopmem.finetune)
    with pytest.raises(InputError) as caught:
        hopmem.finetune("colbert", dataset="x", output="y")
    message = str(caught.value)
    assert message == "Unknown recipe 'colbert'; use one of: prorank, rank-r1, cross-encoder, treehop, decomposer."
    assert message.count(".") == 1 + message.count("...")


def test_missing_settings_data_and_unknown_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"pass settings=hopmem.get_settings\(\)"):
        hopmem.finetune("treehop", dataset=tmp_path, output=tmp_path / "out")
    settings = get_settings(data_dir=tmp_path / "data")
    with pytest.raises(InputError, match="treehop recipe needs dataset="):
        hopmem.finetune("treehop", output=tmp_path / "out", settings=settings)
    with pytest.raises(InputError, match="treehop recipe needs output="):
        hopmem.finetune("treehop", dataset=tmp_path, settings=settings)
    with pytest.raises(InputError, match="Unknown option 'epoch' for TreeHopTrainConfig; it takes: train_splits"):
        hopmem.finetune("treehop", dataset=tmp_path, output=tmp_path / "out", settings=settings, epoch=3)


@pytest.mark.parametrize("recipe", sorted(SHIPPED))
def test_a_shipped_model_loads_as_a_run_with_its_curve(recipe: str) -> None:
    run = TrainingRun.load(SHIPPED[recipe])
    report = json.loads((SHIPPED[recipe] / "metrics.json").read_text())
    assert run.recipe == recipe and run.report == report
    curves = run.curves()
    assert curves and all(len(points) >= 2 for points in curves.values())
    if recipe == "treehop":
        assert [x for x, _ in curves["loss (per epoch)"]] == [float(h["epoch"]) for h in report["history"]]
        assert run.headline()[-1][1]["recall"] == report["validation_best"]["recall"]
    elif recipe == "cross-encoder":
        assert [v for _, v in curves["loss"]] == report["loss_history"]
    else:
        assert [v for _, v in curves["stage2 loss"]] == report["stage2"]["loss_history"]
    text = repr(run)
    assert text.startswith(f"<TrainingRun {recipe} at ") and len(text) < 240
    page = run._repr_html_()
    assert "data:image/png;base64," in page
    last = run.headline()[-1][1]
    key = "recall" if recipe == "treehop" else "mrr"
    assert f"<td>{last[key]:.4f}</td>" in page
    fig = run.plot()
    assert sum(len(ax.get_legend().get_texts()) for ax in fig.axes) == len(curves)  # one labelled line per curve


def test_a_grpo_log_in_the_rank_r1_shape_gives_loss_and_reward_curves(tmp_path: Path) -> None:
    """The report shape rank-r1 writes (``grpo.log`` = :func:`grpo_log` of TRL's log history), from a history in
    TRL's form; a real GRPO run is in the slow prorank test below."""
    from hopmem.finetune.grpo import grpo_log

    history = [
        {"loss": 0.01, "reward": 0.2, "reward_std": 0.3, "step": 1},
        {"loss": -0.02, "reward": 0.5, "reward_std": 0.2, "step": 2},
        {"train_runtime": 12.5, "step": 2},  # TRL's closing entry: no loss, no reward
    ]
    report = {
        "recipe": "rank-r1",
        "grpo": {"steps": 2, "log": grpo_log(history)},
        "dev_before": {"mrr": 0.5},
        "dev_after": {"mrr": 0.625},
        "seconds": {"total": 30.0},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(report))
    run = TrainingRun.load(tmp_path)
    assert run.curves() == {"grpo GRPO loss": [(1.0, 0.01), (2.0, -0.02)], "grpo GRPO reward": [(1.0, 0.2), (2.0, 0.5)]}
    assert repr(run) == f"<TrainingRun rank-r1 at {tmp_path}: 2 steps, loss 0.01 -> -0.02, dev MRR 0.5 -> 0.625, 30 s>"
    assert [ax.get_ylabel() for ax in run.plot().axes] == ["loss", "reward"]


def test_hostile_text_in_a_report_is_escaped(tmp_path: Path) -> None:
    report = {"recipe": "<script>x</script>", "config": {"note": "<b>bold</b>"}, "loss_history": [1.0, 0.5, 0.25]}
    (tmp_path / "metrics.json").write_text(json.dumps(report))
    page = TrainingRun.load(tmp_path)._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page and "<b>bold" not in page


def test_a_folder_without_a_report_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"holds no metrics\.json"):
        TrainingRun.load(tmp_path)
    (tmp_path / "metrics.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="holds no training report"):
        TrainingRun.load(tmp_path)


def test_treehop_through_the_call_returns_the_run_it_wrote(
    small_hotpot: Path, tmp_path: Path, hotpot_cache: Path
) -> None:
    out = tmp_path / "treehop"
    settings = get_settings(data_dir=tmp_path / "data", cache_dir=hotpot_cache)
    options: dict[str, Any] = {"holdout": 6, "val_fraction": 0.2, "epochs": 3, "patience": 3, "batch_size": 8}
    run = hopmem.finetune(
        "treehop",
        dataset=small_hotpot,
        output=out,
        settings=settings,
        progress=False,
        n_hard=8,
        top_n=3,
        attn_size=16,
        mlp_size=16,
        **options,
    )
    assert isinstance(run, TrainingRun) and run.path == run.folder == out and run.recipe == "treehop"
    assert run.config["epochs"] == 3 and run.config["attn_size"] == 16
    again = TrainingRun.load(out)
    assert again.report == json.loads((out / "metrics.json").read_text())
    assert again.curves()["loss (per epoch)"] == run.curves()["loss (per epoch)"]
    assert 1 <= run.steps <= 3 and (out / "model.safetensors").is_file()


@pytest.mark.slow
def test_prorank_through_the_call_records_grpo_and_stage2_curves(
    shared_data: Path, tiny_causal_lm: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pytest.importorskip("trl", reason="the finetune extra is not installed")
    from tests.finetune.test_reranker_data import make_tiny_hotpot

    tiny = make_tiny_hotpot(shared_data / "hotpotqa", tmp_path_factory.mktemp("tiny-hotpot-call"))
    run = hopmem.finetune(
        "prorank",
        dataset=[tiny],
        output=tmp_path / "prorank",
        settings=get_settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"),
        progress=False,
        base_model=str(tiny_causal_lm),
        passage_tokens=32,
        query_tokens=16,
        lora_r=4,
        lora_alpha=8,
        n_negatives=2,
        dev_queries=2,
        stage1={"steps": 2, "prompts_per_step": 1, "num_generations": 4, "max_completion_length": 3, "lr": 5e-3},
        stage2_lr=5e-3,
        max_stage2_groups=3,
    )
    curves = run.curves()
    assert run.recipe == "prorank" and run.config["stage1"]["steps"] == 2
    assert len(curves["stage1 GRPO reward"]) == 2 and curves["stage2 loss"]
    assert TrainingRun.load(tmp_path / "prorank").curves() == curves
