"""``hopmem bench planner``: how often the configured LLM produces a usable AQR plan, and how good its decisions are.

Runs :func:`planner_benchmark` over a multi-hop data set's questions: the LLM's plan (with its fallback, from
:func:`hopmem.agents.planner.plan_question`) and the rule-based plan (:func:`hopmem.agents.planner.rule_plan`) for
each. Where questions carry a type (HotpotQA's ``bridge`` / ``comparison``, present on its train questions here),
decision accuracy is reported with comparison -> parallel, bridge -> sequential, next to the rules alone and a
constant "whole" baseline. Every number in the report is measured in the run that wrote it. The measuring lives here,
with the bench face; :mod:`hopmem.agents.planner` holds only inference.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.agents.planner import CHAIN_MIN_WORDS, MODES, Mode, plan_question, rule_plan
from hopmem.memory.errors import InputError

if TYPE_CHECKING:
    from hopmem.agents.llm.base import ChatLLM
    from hopmem.settings import Settings

log = logging.getLogger(__name__)


def run_planner_bench(
    *,
    settings: Settings,
    data_root: Path | None = None,
    dataset: str = "hotpotqa",
    labelled_only: bool = False,
    limit: int | None = None,
    log_path: Path | None = None,
    progress: bool = True,
    command: str = "",
) -> dict[str, Any]:
    """Plan the data set's questions with the configured LLM and report validity, fallbacks and decision accuracy.

    Args:
        settings: names the LLM (``llm_backend``, ``llm_model`` ...) and ``max_subqueries``.
        data_root: folder holding ``<dataset>/queries.jsonl`` (default ``../shared/data``).
        dataset: the data set's folder name.
        labelled_only: only questions with a type (bridge/comparison).
        limit: the first ``limit`` questions (after ``labelled_only``), or all.
        log_path: one JSON line per question (both plans), or None.
        progress: show a progress bar.
        command: the command line, recorded in the report.
    """
    from hopmem.agent_api import configured_llm
    from hopmem.memory.run_record import RunRecord

    root = (data_root or Path("../shared/data")) / dataset
    if not (root / "queries.jsonl").is_file():
        raise InputError(f"No queries.jsonl under {root}; pass --data with the folder that holds {dataset}/.")
    questions = load_hotpot_questions(root, labelled_only=labelled_only)
    if limit is not None:
        questions = questions[:limit]
    llm = configured_llm(settings)
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(questions), desc="planning", unit="q")
    run = RunRecord(command)
    started = time.perf_counter()
    try:
        metrics = planner_benchmark(
            llm,
            questions,
            max_subqueries=settings.max_subqueries,
            chain_min_words=settings.chain_min_words,
            log_path=log_path,
            progress=(lambda done, total: bar.update(1)) if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    return {
        "benchmark": "planner",
        "dataset": dataset,
        "questions": "labelled (bridge/comparison)" if labelled_only else "all",
        "llm": {"backend": settings.llm_backend, "model": llm.name if llm is not None else None},
        "max_subqueries": settings.max_subqueries,
        "expected_modes": {"comparison": "parallel", "bridge": "sequential"},
        **metrics,
        "wall_s": round(time.perf_counter() - started, 1),
        **run.finish(),
        "per_question_log": str(log_path) if log_path is not None else None,
    }


EXPECTED_MODE: dict[str, Mode] = {"comparison": "parallel", "bridge": "sequential"}
"""HotpotQA question types and the plan each calls for."""


def planner_benchmark(
    llm: ChatLLM | None,
    questions: Sequence[dict[str, Any]],
    *,
    max_subqueries: int = 3,
    chain_min_words: int = CHAIN_MIN_WORDS,
    log_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Plan every question with ``llm`` and with the rules alone, and compare.

    Args:
        llm: the planning model (None measures the rules alone).
        questions: ``{"id", "text", "type"}`` with ``type`` ``bridge``, ``comparison`` or None (unlabelled).
        max_subqueries, chain_min_words: as in :func:`hopmem.agents.planner.plan_question`.
        log_path: where to write one JSON line per question (both plans), or None.
        progress: called with (done, total) after each question.

    Returns:
        Counts and rates: how often the LLM's plan was valid (``llm_valid_rate``), the fallback rate and the reasons,
        the modes chosen, and - over labelled questions, with comparison -> parallel and bridge -> sequential -
        decision accuracy of the LLM-with-fallback planner, of the rules alone, and of a constant "whole" baseline.
    """
    rows: list[dict[str, Any]] = []
    out = log_path.open("w") if log_path is not None else None
    try:
        for n, item in enumerate(questions, start=1):
            plan = plan_question(llm, item["text"], max_subqueries=max_subqueries, chain_min_words=chain_min_words)
            rule_mode, rule_queries = rule_plan(
                item["text"], max_subqueries=max_subqueries, chain_min_words=chain_min_words
            )
            row = {
                "id": item.get("id"),
                "type": item.get("type"),
                "question": item["text"],
                "plan": plan.to_dict(),
                "rule": {"mode": rule_mode, "queries": rule_queries},
            }
            rows.append(row)
            if out is not None:
                out.write(json.dumps(row) + "\n")
                out.flush()
            if progress is not None:
                progress(n, len(questions))
    finally:
        if out is not None:
            out.close()
    return summarise_benchmark(rows)


def summarise_benchmark(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The metrics of :func:`planner_benchmark` from its per-question rows."""
    total = len(rows)
    llm_rows = [r for r in rows if r["plan"]["source"] == "llm"]
    reasons: dict[str, int] = {}
    for r in rows:
        if r["plan"]["source"] == "fallback":
            reason = _reason(r["plan"]["warning"] or "")
            reasons[reason] = reasons.get(reason, 0) + 1
    labelled = [r for r in rows if r.get("type") in EXPECTED_MODE]

    def accuracy(pick: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for kind in (None, *EXPECTED_MODE):
            group = [r for r in labelled if kind is None or r["type"] == kind]
            hits = sum(pick(r) == EXPECTED_MODE[r["type"]] for r in group)
            result["all" if kind is None else kind] = {"n": len(group), "correct": hits, "accuracy": _rate(hits, group)}
        return result

    def modes(pick: Callable[[dict[str, Any]], str]) -> dict[str, int]:
        return {m: sum(pick(r) == m for r in rows) for m in MODES}

    return {
        "n_questions": total,
        "n_labelled": len(labelled),
        "llm_valid_rate": _rate(len(llm_rows), rows),
        "fallback_rate": _rate(total - len(llm_rows), rows),
        "fallback_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "modes": {
            "planner": modes(lambda r: r["plan"]["mode"]),
            "llm_valid_only": {m: sum(r["plan"]["mode"] == m for r in llm_rows) for m in MODES},
            "rules": modes(lambda r: r["rule"]["mode"]),
        },
        "decision_accuracy": {
            "planner": accuracy(lambda r: r["plan"]["mode"]),
            "rules": accuracy(lambda r: r["rule"]["mode"]),
            "always_whole": accuracy(lambda r: "whole"),
        },
        "plan_ms": _percentiles([r["plan"]["ms"] for r in rows]),
    }


def _reason(warning: str) -> str:
    """A short category of a fallback warning, for counting."""
    text = warning.split("LLM plan not used: ", 1)[-1]
    for key in (
        "did not return valid JSON",
        "breaks the schema",
        "unknown mode",
        "with 1 sub-query",
        "shares no word",
        "duplicate",
        "placeholders in a parallel",
        "not earlier in the chain",
        "use no earlier answer",
        "empty sub-query",
        "longer than",
        "no LLM",
        "too long",
        "failed to generate",
    ):
        if key in text:
            return key
    return text[:60]


def _rate(count: int, group: Sequence[Any]) -> float | None:
    return round(count / len(group), 4) if group else None


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {"p50": pick(0.5), "p95": pick(0.95), "mean": round(sum(ordered) / len(ordered), 1)}


def load_hotpot_questions(dataset: Path, *, labelled_only: bool = False) -> list[dict[str, Any]]:
    """``{"id", "text", "type"}`` of a BEIR-style multi-hop ``queries.jsonl`` (``metadata.type`` when present)."""
    items = []
    for line in (dataset / "queries.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        kind = (raw.get("metadata") or {}).get("type")
        if labelled_only and kind not in EXPECTED_MODE:
            continue
        items.append({"id": raw["_id"], "text": raw["text"], "type": kind})
    return items
