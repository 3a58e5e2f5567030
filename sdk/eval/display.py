"""An evaluation report as a notebook object: the report JSON (a dict) with a headline table and a plot.

Every harness of :mod:`hopmem.eval` returns one JSON object, each in its own shape; :class:`EvalReport` keeps that
object as it is (it *is* the dict, so ``report["metrics"]`` and ``json.dumps(report)`` work as before) and reads
one headline row per method out of it (:meth:`EvalReport.table`): the retrieval method, the QA variant, the reranker
row, the TreeHop setting, or the memory method per question category. The table and a bar plot of its scores
(:func:`hopmem.eval.plots.metrics_by_method_figure`) are what a notebook shows.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from hopmem.memory.errors import ConfigError, InputError

KINDS = ("retrieval", "qa", "rerank", "multihop", "memory")
LATENCY = "p50 ms"
"""The column of the table that holds each row's median latency per query."""


def kind_of(report: dict[str, Any]) -> str:
    """Which harness wrote ``report``, read from its shape (``kind`` when the report names it)."""
    if report.get("kind") in KINDS:
        return str(report["kind"])
    if "variants" in report:
        return "qa"
    if "results" in report and "depth" in report:
        return "rerank"
    if "rows" in report and "treehop" in report:
        return "multihop"
    if "method" in report and "metrics" in report:
        return "retrieval"
    return "memory"


def _scores(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, int | float)}


def _retrieval_row(report: dict[str, Any]) -> dict[str, Any]:
    return {"method": report["method"], **_scores(report["metrics"]), LATENCY: report["latency_ms"]["p50"]}


def _memory_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of a memory report (:func:`hopmem.eval.memory.evaluate_memory`): per method its ``overall`` row, then one
    per question category (``by_category``), each with recall@5, recall@10 and the questions behind it (``n``)."""
    rows: list[dict[str, Any]] = []
    for method, result in (report.get("methods") or {}).items():
        if not isinstance(result, dict):
            continue
        latency = (result.get("latency_ms") or {}).get("p50")
        rows.append({"method": f"{method} (all)", **_scores(result.get("overall") or {}), LATENCY: latency})
        for category, metrics in (result.get("by_category") or {}).items():
            if isinstance(metrics, dict):
                rows.append({"method": f"{method} / {category}", **_scores(metrics)})
    return rows


def table_of(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """One row per method: ``{"method": label, metric: value, ..., "p50 ms": ...}`` in the report's order."""
    if kind == "retrieval":
        return [_retrieval_row(r) for r in report.get("runs") or [report]]
    if kind == "qa":
        return [
            {
                "method": v["variant"],
                **_scores(v["metrics"]),
                LATENCY: v["latency_ms"].get("p50"),
                "LLM calls / q": v.get("llm_calls_per_query"),
            }
            for v in report["variants"]
        ]
    if kind == "rerank":
        from hopmem.eval.plots import row_label

        return [
            {"method": row_label(r), **_scores(r["metrics"]), LATENCY: r["latency_ms"]["p50"]}
            for r in report["results"]
        ]
    if kind == "multihop":
        return [
            {
                "method": f"{r['method']} (hops {r['hops']}, top {r['top_n']})" if r.get("top_n") else r["method"],
                "recall": r["recall"],
                "chunks": r["avg_chunks"],
                LATENCY: r["p50_ms"],
            }
            for r in report["rows"]
        ]
    return _memory_rows(report)


def _is_score(name: str, rows: list[dict[str, Any]]) -> bool:
    """A column drawn in the plot: a metric whose values all lie in [0, 1] (not latency, chunks or call counts)."""
    if name in ("method", "n", LATENCY, "chunks", "LLM calls / q"):
        return False
    values = [r.get(name) for r in rows]
    return all(isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in values)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return html.escape(str(value)) if value is not None else ""


class EvalReport(dict[str, Any]):
    """The report of :func:`hopmem.evaluate` (any harness's JSON object), with a notebook display.

    Attributes:
        kind: ``retrieval``, ``qa``, ``rerank``, ``multihop`` or ``memory``.

    Examples:
        A report is the harness's dict; a notebook shows its table per method and a bar plot:

        >>> from hopmem import EvalReport
        >>> report = EvalReport({"dataset": "tiny", "split": "test", "method": "bm25", "n_queries": 2,
        ...                      "metrics": {"ndcg@10": 0.5, "recall@10": 1.0}, "latency_ms": {"p50": 1.5}})
        >>> report.kind, report["metrics"]["ndcg@10"]
        ('retrieval', 0.5)
        >>> report.table()
        [{'method': 'bm25', 'ndcg@10': 0.5, 'recall@10': 1.0, 'p50 ms': 1.5}]
        >>> report
        <EvalReport retrieval on tiny test, 2 queries: bm25 ndcg@10 0.500 recall@10 1.000>
        >>> "data:image/png;base64," in report._repr_html_()
        True
    """

    def __init__(self, report: dict[str, Any], kind: str | None = None) -> None:
        super().__init__(report)
        if kind is not None and kind not in KINDS:
            raise InputError(f"Unknown report kind {kind!r}; use one of {', '.join(KINDS)}.")
        self.kind = kind or kind_of(report)

    @classmethod
    def load(cls, path: Path | str, kind: str | None = None) -> EvalReport:
        """Read a report a harness wrote (``--json``) back.

        Raises:
            InputError: when the file is missing or holds no JSON object.
        """
        file = Path(path).expanduser()
        if not file.is_file():
            raise InputError(f"No report at {file}.")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{file} is not valid JSON ({exc.msg} at line {exc.lineno}).") from exc
        if not isinstance(data, dict):
            raise InputError(f"{file} holds no report (a JSON object is expected).")
        return cls(data, kind)

    def table(self) -> list[dict[str, Any]]:
        """The headline: one row per method, ``{"method": label, metric: value, ..., "p50 ms": ...}``."""
        return table_of(self, self.kind)

    def score_names(self) -> list[str]:
        """The table's columns that are scores in [0, 1] (what :meth:`plot` draws)."""
        rows = self.table()
        names = list(dict.fromkeys(k for r in rows for k in r))
        return [n for n in names if _is_score(n, rows)]

    def plot(self, metrics: list[str] | None = None) -> Any:
        """A matplotlib Figure: a bar per score and method (``metrics`` picks the scores; default all).

        Raises:
            ConfigError: without matplotlib.
            InputError: when the report has no row or no such score.
        """
        from hopmem.eval.plots import metrics_by_method_figure

        rows = self.table()
        names = metrics or self.score_names()
        if not rows or not names:
            raise InputError("The report has no scores to plot.")
        missing = [n for n in names if any(n not in r for r in rows)]
        if missing:
            raise InputError(f"Not every row has {missing[0]!r}; plot one of: {', '.join(self.score_names())}.")
        values = {n: [float(r[n]) for r in rows] for n in names}
        return metrics_by_method_figure([str(r["method"]) for r in rows], values, self._title())

    def to_json(self) -> str:
        """The report as JSON text, as the harness writes it."""
        return json.dumps(dict(self), indent=2, default=str)

    def save(self, path: Path | str) -> Path:
        """Write the report as JSON at ``path`` (its folder made); returns the path."""
        out = Path(path).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.to_json() + "\n", encoding="utf-8")
        return out

    def _title(self) -> str:
        dataset = Path(str(self.get("dataset", "?"))).name
        n = self.get("n_queries", self.get("n_questions"))
        where = " ".join(str(x) for x in (dataset, self.get("split")) if x)
        return f"{self.kind} on {where}" + (f", {n} queries" if n is not None else "")

    def __repr__(self) -> str:
        rows = self.table()
        shown = []
        for row in rows[:4]:
            scores = [f"{k} {v:.3f}" for k, v in row.items() if k != "method" and _is_score(k, rows)][:3]
            shown.append(" ".join([str(row["method"]), *scores]))
        more = f"; … {len(rows) - 4} more" if len(rows) > 4 else ""
        return f"<EvalReport {self._title()}: {'; '.join(shown)}{more}>"

    def _repr_html_(self) -> str:
        rows = self.table()
        columns = list(dict.fromkeys(k for r in rows for k in r))
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
        image = ""
        if rows and self.score_names():
            try:
                from hopmem.eval.plots import figure_png

                png = base64.b64encode(figure_png(self.plot())).decode("ascii")
                image = f"<img alt='scores by method' src='data:image/png;base64,{png}'/>"
            except ConfigError:
                image = "<p><i>(install matplotlib for the plot)</i></p>"
        return (
            f"<div><p><b>Evaluation</b> {html.escape(self._title())}</p>"
            f"<table><tr>{head}</tr>{body}</table>{image}</div>"
        )
