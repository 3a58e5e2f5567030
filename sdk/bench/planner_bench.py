"""``hopmem bench planner``: how often the configured LLM produces a usable AQR plan, and how good its decisions are.

Runs :func:`hopmem.agents.planner.planner_benchmark` over a multi-hop data set's questions: the LLM's plan (with its
fallback) and the rule-based plan for each. Where questions carry a type (HotpotQA's ``bridge`` / ``comparison``,
present on its train questions here), decision accuracy is reported with comparison -> parallel, bridge ->
sequential, next to the rules alone and a constant "whole" baseline. Every number in the report is measured in the
run that wrote it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.memory.errors import InputError

if TYPE_CHECKING:
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
    from hopmem.agents.planner import load_hotpot_questions, planner_benchmark
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
