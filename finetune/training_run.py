"""A finished training run as a notebook object: its folder, recipe, settings, results and loss/reward curves.

Every recipe writes its report as ``metrics.json`` beside the weights (:meth:`hopmem.finetune.recipe.Recipe.run`),
so a run is read back from its folder alone: one just trained by :func:`hopmem.finetune.train`, an earlier one, or a
shipped model (``agents/reranker_weights/prorank``, ``agents/treehop_weights``). What each recipe records per step:

- ``cross-encoder``: ``loss_history`` (BCE per optimiser step);
- ``prorank``: ``stage1.log`` (TRL's GRPO log: loss and mean reward per step, :func:`hopmem.finetune.grpo.grpo_log`)
  and ``stage2.loss_history`` (score-learning loss per step);
- ``rank-r1``: ``grpo.log`` (TRL's GRPO log);
- ``decomposer``: ``stage1.log`` and ``stage2.log`` (TRL's GRPO log of each curriculum stage);
- ``treehop``: ``history`` (InfoNCE loss and validation recall of the hop tree per epoch; its report has no
  ``recipe`` field, so a ``history`` with ``validation_best`` names it).

The curves are drawn with matplotlib (the ``plot`` extra), imported inside the functions. This module cannot use the
SDK's plot helpers (finetune may not import the SDK), so it draws its own figure; the inline PNG is the same
base64 ``<img>`` the SDK's displays use.
"""

from __future__ import annotations

import base64
import html
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hopmem.memory.errors import ConfigError, InputError

METRICS_FILE = "metrics.json"
SMOOTH_OVER = 30
"""A curve of more points than this is drawn faint, with its running mean of 10 points over it."""

Curve = list[tuple[float, float]]
"""``(step or epoch, value)`` points, in training order."""


def _pyplot() -> Any:
    try:
        import matplotlib

        if "ipykernel" not in sys.modules:  # a notebook keeps its inline backend, so plt.show() still shows
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError("Plots need matplotlib: run `make install` or pip install 'hopmem[plot]'.") from exc
    return plt


def _points(values: Any) -> Curve:
    return [(float(i), float(v)) for i, v in enumerate(values or [], start=1) if isinstance(v, int | float)]


def _log_points(log: Any, key: str) -> Curve:
    """``key`` of each TRL log entry that has it, against its ``step`` (its position when it has none)."""
    out: Curve = []
    for i, entry in enumerate(log or [], start=1):
        if isinstance(entry, dict) and isinstance(entry.get(key), int | float):
            out.append((float(entry.get("step", i)), float(entry[key])))
    return out


def recipe_of(report: dict[str, Any]) -> str:
    """The recipe that wrote ``report``: its ``recipe`` field, ``treehop`` for TreeHop's, else ``unknown``."""
    if report.get("recipe"):
        return str(report["recipe"])
    if "history" in report and "validation_best" in report:
        return "treehop"
    return "unknown"


def curves_of(report: dict[str, Any]) -> dict[str, Curve]:
    """The per-step (per-epoch for TreeHop) series a recipe's report holds, by name; empty ones left out."""
    recipe = recipe_of(report)
    found: dict[str, Curve] = {}
    if recipe == "treehop":
        history = [h for h in report.get("history") or [] if isinstance(h, dict)]
        found["loss (per epoch)"] = [(float(h["epoch"]), float(h["loss"])) for h in history if "loss" in h]
        found["validation recall"] = [(float(h["epoch"]), float(h["recall"])) for h in history if "recall" in h]
        found["direct recall (same size)"] = [
            (float(h["epoch"]), float(h["direct_recall"])) for h in history if "direct_recall" in h
        ]
    else:
        for stage in ("stage1", "stage2", "grpo"):
            log = (report.get(stage) or {}).get("log")
            found[f"{stage} GRPO loss"] = _log_points(log, "loss")
            found[f"{stage} GRPO reward"] = _log_points(log, "reward")
        found["warm-up loss"] = _log_points((report.get("warmup") or {}).get("log"), "loss")  # decomposer
        found["loss"] = _points(report.get("loss_history"))
        found["stage2 loss"] = _points((report.get("stage2") or {}).get("loss_history"))
    return {name: points for name, points in found.items() if points}


def headline_of(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The before/after rows of the report: dev pairs for rerankers, validation recall for TreeHop."""
    keys: tuple[tuple[str, str], ...]
    if recipe_of(report) == "treehop":
        keys = (("untrained", "validation_untrained"), ("trained (best epoch)", "validation_best"))
    else:
        keys = (("base", "dev_before"), ("after stage 1", "dev_after_stage1"), ("trained", "dev_after"))
    return [(label, report[key]) for label, key in keys if isinstance(report.get(key), dict)]


@dataclass
class TrainingRun:
    """One training run read from (or just written to) its output folder.

    Attributes:
        path: the run's folder (weights, ``metrics.json``, ``data.json``, the model card).
        report: ``metrics.json``, as the recipe wrote it.

    Examples:
        A run is read back from any folder holding a recipe's ``metrics.json``; here one in the TreeHop shape:

        >>> import json, tempfile
        >>> from pathlib import Path
        >>> from hopmem.finetune import TrainingRun
        >>> folder = Path(tempfile.mkdtemp())
        >>> history = [{"epoch": e, "loss": 2.0 / e, "recall": 0.5 + e / 100} for e in (1, 2, 3)]
        >>> report = {"history": history, "validation_best": {"epoch": 3, "recall": 0.53},
        ...           "validation_untrained": {"recall": 0.5}, "config": {"epochs": 3}, "seconds": 4.2}
        >>> _ = (folder / "metrics.json").write_text(json.dumps(report))
        >>> run = TrainingRun.load(folder)
        >>> run.recipe, run.steps
        ('treehop', 3)
        >>> run.curves()["loss (per epoch)"][-1]
        (3.0, 0.6666666666666666)
        >>> print(repr(run).replace(str(folder), "FOLDER"))
        <TrainingRun treehop at FOLDER: 3 epochs, loss 2 -> 0.667, recall 0.5 -> 0.53, 4.2 s>
        >>> "<img" in run._repr_html_()
        True

        A shipped model is a run too (the package's TreeHop weights were trained this way):

        >>> from hopmem.agents.treehop_model import packaged_model_dir
        >>> TrainingRun.load(packaged_model_dir()).recipe
        'treehop'
    """

    path: Path
    report: dict[str, Any]

    @classmethod
    def load(cls, path: Path | str) -> TrainingRun:
        """Read the run in ``path`` (its ``metrics.json``).

        Raises:
            InputError: when the folder holds no ``metrics.json`` or it is not a JSON object.
        """
        folder = Path(path).expanduser()
        file = folder / METRICS_FILE
        if not file.is_file():
            raise InputError(f"{folder} holds no {METRICS_FILE}; give the output folder of a finished training run.")
        try:
            report = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{file} is not valid JSON ({exc.msg} at line {exc.lineno}).") from exc
        if not isinstance(report, dict):
            raise InputError(f"{file} holds no training report (a JSON object is expected).")
        return cls(folder, report)

    @property
    def folder(self) -> Path:
        """The run's folder (the same as :attr:`path`): what ``model_dir=`` of an evaluation takes."""
        return self.path

    @property
    def recipe(self) -> str:
        """``cross-encoder``, ``prorank``, ``rank-r1``, ``treehop`` (or ``unknown``)."""
        return recipe_of(self.report)

    @property
    def config(self) -> dict[str, Any]:
        """The run's settings as the recipe recorded them."""
        return dict(self.report.get("config") or {})

    @property
    def seconds(self) -> float | None:
        """Wall time of the whole run (data, training, evaluation), when recorded."""
        value = self.report.get("seconds")
        if isinstance(value, dict):
            value = value.get("total")
        return float(value) if isinstance(value, int | float) else None

    @property
    def steps(self) -> int:
        """Optimiser steps (epochs for TreeHop) recorded in the run's longest curve."""
        return max((len(points) for points in self.curves().values()), default=0)

    def curves(self) -> dict[str, Curve]:
        """Every loss/reward/recall series the report holds, by name (see the module's list)."""
        return curves_of(self.report)

    def headline(self) -> list[tuple[str, dict[str, Any]]]:
        """The before/after rows: ``(label, {metric: value})``."""
        return headline_of(self.report)

    def to_json(self) -> str:
        """The report as JSON text (what ``metrics.json`` holds)."""
        return json.dumps(self.report, indent=2)

    def plot(self) -> Any:
        """A matplotlib Figure: the loss curves on the left, rewards or validation recall on the right.

        Raises:
            ConfigError: without matplotlib.
            InputError: when the report holds no curve.
        """
        curves = self.curves()
        if not curves:
            raise InputError(f"The run in {self.path} recorded no loss or reward per step.")
        plt = _pyplot()
        losses = {n: c for n, c in curves.items() if "loss" in n}
        others = {n: c for n, c in curves.items() if "loss" not in n}
        panels = [p for p in (losses, others) if p]
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.4), squeeze=False)
        for ax, panel in zip(axes[0], panels, strict=True):
            for name, points in panel.items():
                xs, ys = zip(*points, strict=True)
                if len(points) <= SMOOTH_OVER:
                    ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, label=name)
                    continue
                (raw,) = ax.plot(xs, ys, linewidth=0.7, alpha=0.35)  # noisy per step: the running mean shows the trend
                ax.plot(xs, _rolling(ys), linewidth=1.6, color=raw.get_color(), label=f"{name} (mean of 10)")
            ax.set_xlabel("epoch" if self.recipe == "treehop" else "step")
            ax.set_ylabel("loss" if panel is losses else ("recall" if self.recipe == "treehop" else "reward"))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"{self.recipe} training: {self.path.name}", fontsize=10)
        fig.tight_layout()
        return fig

    def _png(self) -> str:
        """The curves as a base64 PNG, or an empty string when there is nothing (or nothing to draw with)."""
        try:
            fig = self.plot()
        except (InputError, ConfigError):
            return ""
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        _pyplot().close(fig)
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    def __repr__(self) -> str:
        parts = [f"{self.steps} {'epochs' if self.recipe == 'treehop' else 'steps'}"]
        losses = next((c for n, c in self.curves().items() if "loss" in n), None)
        if losses:
            first, last = _ends(losses)
            parts.append(f"loss {first:.3g} -> {last:.3g}")
        rows = self.headline()
        if len(rows) >= 2:
            key = "recall" if self.recipe == "treehop" else "mrr"
            before, after = rows[0][1].get(key), rows[-1][1].get(key)
            if isinstance(before, int | float) and isinstance(after, int | float):
                parts.append(f"{'recall' if key == 'recall' else 'dev MRR'} {before:.3g} -> {after:.3g}")
        if self.seconds is not None:
            parts.append(f"{self.seconds:g} s")
        return f"<TrainingRun {self.recipe} at {self.path}: {', '.join(parts)}>"

    def _repr_html_(self) -> str:
        rows = self.headline()
        metrics = sorted({k for _, row in rows for k, v in row.items() if isinstance(v, int | float)})
        head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
        body = "".join(
            f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{_number(row.get(m))}</td>" for m in metrics) + "</tr>"
            for label, row in rows
        )
        table = f"<table><tr><th></th>{head}</tr>{body}</table>" if rows else ""
        config = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(json.dumps(v, default=str))[:200]}</td></tr>"
            for k, v in self.config.items()
        )
        png = self._png()
        image = f"<img alt='training curves' src='data:image/png;base64,{png}'/>" if png else ""
        seconds = f", {self.seconds:g} s" if self.seconds is not None else ""
        return (
            f"<div><p><b>Training run</b> {html.escape(self.recipe)} in <code>{html.escape(str(self.path))}</code> "
            f"({self.steps} {'epochs' if self.recipe == 'treehop' else 'steps'}{seconds})</p>{table}{image}"
            f"<details><summary>settings</summary><table>{config}</table></details></div>"
        )


def _ends(points: Curve) -> tuple[float, float]:
    """First and last value of a curve; of a long, noisy per-step curve (over 30 points) the means of its first and
    last 10 points, as the cross-encoder's ``loss_first``/``loss_last`` are."""
    window = 10 if len(points) > 30 else 1
    head, tail = points[:window], points[-window:]
    return sum(v for _, v in head) / len(head), sum(v for _, v in tail) / len(tail)


def _rolling(values: Sequence[float], window: int = 10) -> list[float]:
    """The mean of each value and the ``window - 1`` before it (fewer at the start)."""
    return [sum(values[max(0, i - window + 1) : i + 1]) / (i + 1 - max(0, i - window + 1)) for i in range(len(values))]


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value)) if value is not None else ""
