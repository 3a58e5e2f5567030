"""The trainer skeleton's order on a stand-in recipe (no model): checks first, the run record merged into the report,
checkpoints dropped unless kept, and the shared checkpoint helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hopmem.finetune.recipe import CHECKPOINT_DIR, Recipe, TrainContext, load_checkpoint, save_checkpoint
from hopmem.memory.errors import InputError


@dataclass
class _Config:
    output: str
    keep_checkpoints: bool = False
    fail_check: bool = False


class _Recipe(Recipe[_Config, list[int]]):
    name = "stand-in"

    def __init__(self, config: _Config, context: TrainContext) -> None:
        super().__init__(config, context)
        self.steps: list[str] = []

    def check(self) -> None:
        self.steps.append("check")
        if self.config.fail_check:
            raise InputError("Nothing to train on.")

    def load_data(self) -> list[int]:
        self.steps.append("load_data")
        return [1, 2, 3]

    def fit(self, data: list[int]) -> dict[str, Any]:
        self.steps.append("fit")
        (self.checkpoints / "last.pt").parent.mkdir(parents=True)
        (self.checkpoints / "last.pt").write_text("state")
        return {"trained_on": len(data), "seconds": round(self.elapsed(), 1)}

    def write(self, report: dict[str, Any], data: list[int]) -> None:
        self.steps.append("write")
        self.written = dict(report)

    def inputs(self, data: list[int]) -> dict[str, Any]:
        return {"data": {"numbers": len(data)}}


def _context() -> TrainContext:
    return TrainContext(embedder=None, cache_dir=Path("."), chunk_size=256, chunk_overlap=32, command="hopmem x")  # type: ignore[arg-type]


def test_run_goes_check_data_fit_record_write_and_drops_checkpoints(tmp_path: Path) -> None:
    recipe = _Recipe(_Config(output=str(tmp_path / "model")), _context())
    report = recipe.run()
    assert recipe.steps == ["check", "load_data", "fit", "write"]
    assert report["trained_on"] == 3 and report["command"] == "hopmem x" and "machine" in report
    assert report["inputs"] == {"data": {"numbers": 3}}
    assert recipe.written == report  # the files get the report with its run record
    assert not (tmp_path / "model" / CHECKPOINT_DIR).exists()


def test_kept_checkpoints_stay_and_a_failed_check_reads_no_data(tmp_path: Path) -> None:
    kept = _Recipe(_Config(output=str(tmp_path / "a"), keep_checkpoints=True), _context())
    kept.run()
    assert (tmp_path / "a" / CHECKPOINT_DIR / "last.pt").is_file()
    refused = _Recipe(_Config(output=str(tmp_path / "b"), fail_check=True), _context())
    with pytest.raises(InputError, match="Nothing to train on"):
        refused.run()
    assert refused.steps == ["check"]


def test_checkpoints_round_trip_and_refuse_another_run(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    assert load_checkpoint(path, 10, "stale") is None
    save_checkpoint(path, {"step": 4, "total_steps": 10, "losses": [0.5]})
    assert load_checkpoint(path, 10, "stale") == {"step": 4, "total_steps": 10, "losses": [0.5]}
    assert not path.with_suffix(".tmp").exists()
    with pytest.raises(InputError, match="from a run with other settings"):
        load_checkpoint(path, 12, "The checkpoint is from a run with other settings; remove it.")
