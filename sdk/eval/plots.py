"""PNG plots of evaluation reports (matplotlib, headless), for the docs, the model cards and the notebooks.

:func:`metrics_by_method_figure` draws any report's headline table (the notebook display of
:class:`hopmem.eval.display.EvalReport`); the others draw one report kind each. Files are written by ``_save`` only.

matplotlib is imported inside the functions (the ``plot`` extra), with the non-interactive ``Agg`` backend, so a
plot can be written on a server without a display.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hopmem.memory.errors import ConfigError


def _pyplot() -> Any:
    try:
        import matplotlib

        if "ipykernel" not in sys.modules:  # a notebook keeps its inline backend, so plt.show() still shows
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError("Plots need matplotlib: run `make install` or pip install 'hopmem[plot]'.") from exc
    return plt


def _save(plt: Any, fig: Any, path: Path | str) -> Path:
    """Write ``fig`` as a PNG at ``path`` (its folder made), free it, and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def figure_png(fig: Any) -> bytes:
    """``fig`` as PNG bytes (for an inline notebook image), the figure freed."""
    import io

    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def metrics_by_method_figure(labels: list[str], metrics: dict[str, list[float]], title: str = "") -> Any:
    """Grouped horizontal bars: one group per method (``labels``), one bar per metric, its value written beside it.

    Any report whose rows are methods with scores in [0, 1] (retrieval, QA variants, rerankers, TreeHop, memory
    categories) draws with this. Returns the matplotlib Figure (not saved; :func:`plot_metrics_by_method` saves one).
    """
    plt = _pyplot()
    names = list(metrics)
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(labels) * max(1, len(names)) ** 0.5 + 1.6))
    height = 0.8 / max(1, len(names))
    colours = ("#3b6ea5", "#9cc3e6", "#d08c60", "#5aa469", "#b07aa1", "#e1b12c")
    top = 0.0
    for j, name in enumerate(names):
        ys = [i - 0.4 + height * (j + 0.5) for i in range(len(labels))]
        values = metrics[name]
        ax.barh(ys, values, height, label=name, color=colours[j % len(colours)])
        for y, value in zip(ys, values, strict=True):
            ax.text(value + 0.005, y, f"{value:.3f}", va="center", fontsize=7)
        top = max(top, *values, 0.1)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, min(1.05, top * 1.2))
    ax.set_xlabel("score")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_metrics_by_method(
    labels: list[str], metrics: dict[str, list[float]], path: Path | str, title: str = ""
) -> Path:
    """:func:`metrics_by_method_figure` written as a PNG at ``path``; returns the path."""
    return _save(_pyplot(), metrics_by_method_figure(labels, metrics, title), path)


def row_label(row: dict[str, Any]) -> str:
    """``hybrid`` for a candidate order kept as it is, ``hybrid + prorank`` for a reranked one."""
    return row["candidates"] if row["reranker"] == "none" else f"{row['candidates']} + {row['reranker']}"


def plot_rerank_report(report: dict[str, Any], path: Path | str) -> Path:
    """Two panels: nDCG@10 and recall@10 of every row of a ``hopmem eval rerank`` report, and its latency per query
    (p50 bar, p95 whisker, log scale). Returns the PNG's path."""
    plt = _pyplot()
    rows = report["results"]
    labels = [row_label(r) for r in rows]
    ndcg = [r["metrics"]["ndcg@10"] for r in rows]
    recall = [r["metrics"]["recall@10"] for r in rows]
    p50 = [max(r["latency_ms"]["p50"], 1e-3) for r in rows]
    p95 = [max(r["latency_ms"]["p95"], 1e-3) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.55 * len(rows) + 2.2), gridspec_kw={"width_ratios": [3, 2]})
    ys = list(range(len(rows)))
    height = 0.38
    left.barh([y - height / 2 for y in ys], ndcg, height, label="nDCG@10", color="#3b6ea5")
    left.barh([y + height / 2 for y in ys], recall, height, label="recall@10", color="#9cc3e6")
    for y, value in zip(ys, ndcg, strict=True):
        left.text(value + 0.005, y - height / 2, f"{value:.3f}", va="center", fontsize=8)
    left.set_yticks(ys, labels)
    left.invert_yaxis()
    left.set_xlim(0, min(1.0, max([*ndcg, *recall, 0.1]) * 1.2))
    left.set_xlabel("score")
    left.legend(loc="lower right", fontsize=8)
    left.set_title(f"{report['dataset']} {report['split']}: {report['n_queries']} queries, top {report['depth']}")
    err = [[0.0] * len(rows), [b - a for a, b in zip(p50, p95, strict=True)]]
    right.barh(ys, p50, 0.6, xerr=err, color="#d08c60", capsize=3)
    right.set_xscale("log")
    right.set_yticks(ys, [""] * len(rows))
    right.invert_yaxis()
    right.set_xlabel("latency per query, ms (p50, whisker p95)")
    machine = report.get("machine", {})
    fig.suptitle(
        f"hopmem eval rerank ({machine.get('cpu_count', machine.get('cpus', '?'))} CPUs, "
        f"{report.get('git_revision', '')[:8]})",
        fontsize=9,
    )
    fig.tight_layout()
    return _save(plt, fig, path)


def plot_serve_sweep(report: dict[str, Any], path: Path | str) -> Path:
    """Search latency of ``hopmem bench serve --sweep`` by clients in flight, with Little's-law floor and the target.

    Args:
        report: the bench's report (its ``sweep`` rows; ``targets`` for the search goal, when judged).
        path: the PNG to write.
    """
    rows = report.get("sweep") or []
    if not rows:
        raise ConfigError("The report has no sweep rows; run hopmem bench serve with --sweep.")
    plt = _pyplot()
    clients = [r["clients"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(clients, [r["search"]["p50"] for r in rows], "o-", label="search p50 (HTTP, end to end)")
    ax.plot(clients, [r["search"]["p95"] for r in rows], "s--", label="search p95")
    ax.plot(clients, [r["bound_ms"] for r in rows], ":", color="grey", label="clients / throughput (Little's law)")
    target = next(
        (t for n, t in report.get("targets", {}).items() if n.startswith("search_p50") and "target_ms" in t), None
    )
    if target is not None:
        ax.axhline(target["target_ms"], color="red", linewidth=0.8, label=f"target p50 {target['target_ms']:.0f} ms")
    ax.set_xscale("log", base=2)
    ax.set_xticks(clients, [str(c) for c in clients])
    ax.set_xlabel("concurrent clients (requests in flight)")
    ax.set_ylabel("ms")
    mix = ", ".join(f"{100 * share:.0f}% {op}" for op, share in (report.get("mix") or {}).items())
    ax.set_title(f"hopmem serve: {report.get('n')} memories, {report.get('workers')} workers, {mix}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(plt, fig, path)


def plot_agent_bench(report: dict[str, Any], path: Path | str) -> Path:
    """Where the agent's time goes (mean ms per step) and how the totals spread against the targets.

    Args:
        report: ``hopmem bench agent``'s report (``steps``, ``targets``) with its ``per_query`` rows.
        path: the PNG to write.
    """
    plt = _pyplot()
    steps = report["steps"]
    names = sorted(steps, key=lambda n: steps[n]["mean"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.0))
    left.barh(names, [steps[n]["mean"] for n in names], color="#4c72b0")
    for i, name in enumerate(names):
        left.text(steps[name]["mean"], i, f" {100 * steps[name]['share']:.0f}%", va="center", fontsize=8)
    left.set_xlabel("mean ms per question (share of the total)")
    left.set_title("time per step")
    rows = report.get("per_query") or []
    totals = sorted(r["ms"] / 1000 for r in rows)
    firsts = sorted(r["first_token_ms"] / 1000 for r in rows)
    right.plot(totals, [(i + 1) / len(totals) for i in range(len(totals))], label="whole answer")
    right.plot(firsts, [(i + 1) / len(firsts) for i in range(len(firsts))], label="first answer token")
    for name, color in (("p95", "red"), ("first_token_p50", "orange")):
        target = report["targets"].get(name)
        if target:
            right.axvline(target["target_ms"] / 1000, color=color, linestyle=":", label=f"target {name}")
    right.set_xlabel("seconds")
    right.set_ylabel("share of questions")
    right.set_title(f"{report['n_queries']} questions of {report['dataset']} {report['split']}")
    right.legend(fontsize=8)
    fig.tight_layout()
    return _save(plt, fig, path)
