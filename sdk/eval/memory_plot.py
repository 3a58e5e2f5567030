"""The PNG of a ``hopmem eval memory`` report: recall per question category and method (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hopmem.eval.plots import _pyplot, _save


def plot_memory_report(report: dict[str, Any], path: Path | str) -> Path:
    """Recall@10 (bars) and recall@5 (dots) per question category and overall for each method of a ``hopmem eval
    memory`` report, counted over retrieved turns. Returns the PNG's path."""
    plt = _pyplot()
    methods = list(report["methods"])
    groups = ["overall", *next(iter(report["methods"].values()))["by_category"]]
    fig, ax = plt.subplots(figsize=(10.0, 4.6))
    width = 0.8 / max(1, len(methods))
    colors = ["#9cc3e6", "#f2b880", "#3b6ea5", "#5a9e6f", "#b55d5d"]
    for i, method in enumerate(methods):
        data = report["methods"][method]
        cells = [data["overall"], *[data["by_category"][g] for g in groups[1:]]]
        xs = [g + (i - (len(methods) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [c["recall@10"] for c in cells], width, label=f"{method} R@10", color=colors[i % len(colors)])
        ax.plot(xs, [c["recall@5"] for c in cells], "k.", markersize=5)
    ax.plot([], [], "k.", label="R@5")
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("evidence recall (turns)")
    ax.set_title(f"Conversation memory: {report['dataset']} ({report['n_questions']} questions)")
    ax.legend(fontsize=8, ncol=len(methods) + 1, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    fig.tight_layout()
    return _save(plt, fig, path)
