"""``hopmem bench agent``: where a question's time goes, step by step and LLM call by LLM call.

Every question of a BEIR-layout multi-hop split runs through ``Agent.stream`` over the indexed corpus (a copy of the
cached index, so nothing is remembered between questions). For each question the report keeps the total time, the
time to the first answer token (what a chat user waits for), the time of every step (summed over search rounds),
and every LLM call with its prompt and generated tokens, time, tokens per second and, for the streamed answer, its
own wait for the first token (:class:`hopmem.agents.llm.metered.MeteredLLM`). It aggregates p50/p95/p99 per step
and per kind of LLM call, the share of the total each step takes, and the supporting-evidence recall@10 of the
final ranking, so a speed-up can be shown not to cost evidence.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hopmem.agent_api import Agent
from hopmem.eval.qa import judged_questions, ranked_documents
from hopmem.memory.datasets.metrics import mean, percentiles, recall_at_k
from hopmem.memory.datasets.store_loader import BEIR_TENANT
from hopmem.memory.run_record import RunRecord, cli_command
from hopmem.memory_api import Memory
from hopmem.settings import Settings, get_settings

log = logging.getLogger(__name__)

QUANTILES = (50, 95, 99)
# The goals on a 2-core CPU with the defaults: name -> (measured key, limit in ms).
TARGETS_MS = {
    "p50": ("p50", 3000.0),
    "p95": ("p95", 6000.0),
    "max": ("max", 15000.0),
    "first_token_p50": ("first_token_p50", 1500.0),
}


def _stats(values: Sequence[float]) -> dict[str, float]:
    row = percentiles(list(values), QUANTILES)
    row["mean"] = round(mean(list(values)), 3)
    row["max"] = round(max(values), 3) if values else 0.0
    return row


def _ask(agent: Agent, question: Any, relevant: dict[str, int]) -> dict[str, Any]:
    """One question through ``agent.stream``: the total, the first token's wait, steps, LLM calls and recall."""
    started = time.perf_counter()
    first_token: float | None = None
    answer = None
    for event in agent.stream(question.text):
        if event["type"] == "token" and first_token is None:
            first_token = (time.perf_counter() - started) * 1000
        elif event["type"] == "answer":
            answer = event["answer"]
    total = (time.perf_counter() - started) * 1000
    assert answer is not None  # the stream always ends with the answer
    steps: dict[str, float] = defaultdict(float)
    calls: list[dict[str, Any]] = []
    for step in answer.trace:
        steps[step["step"]] += float(step.get("ms", 0.0))
        calls.extend({"step": step["step"], **call} for call in step.get("llm_calls", []))
    plan: dict[str, Any] = next((s for s in answer.trace if s["step"] == "plan"), {})
    ranking = ranked_documents(agent, answer.trace)
    return {
        "query_id": question.id,
        "question": question.text,
        "answer": answer.answer,
        "ms": round(total, 2),
        # No token when the answer was not generated (extractive, or nothing found): the whole run is the wait.
        "first_token_ms": round(first_token if first_token is not None else total, 2),
        "streamed": first_token is not None,
        "steps": {name: round(ms, 2) for name, ms in steps.items()},
        "llm_calls": calls,
        "plan_mode": plan.get("mode"),
        "rounds": sum(1 for s in answer.trace if s["step"] == "retrieve"),
        "recall@10": recall_at_k(ranking, relevant, 10),
    }


def _llm_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per ``step/kind`` of LLM call: count, time, tokens, tokens/s and (streams) the wait for the first token."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        for call in row["llm_calls"]:
            groups[f"{call['step']}/{call['kind']}"].append(call)
    out: dict[str, Any] = {}
    for name, calls in sorted(groups.items()):
        entry: dict[str, Any] = {
            "count": len(calls),
            "errors": sum(1 for c in calls if c.get("error")),
            "ms": _stats([c["ms"] for c in calls]),
            "prompt_tokens_mean": round(mean([c["prompt_tokens"] for c in calls]), 1),
            "completion_tokens": _stats([c["completion_tokens"] for c in calls]),
            "tokens_per_s_p50": percentiles([c["tokens_per_s"] for c in calls], (50,))["p50"],
            "hit_max_tokens": sum(
                1 for c in calls if c.get("max_tokens") and c["completion_tokens"] >= c["max_tokens"]
            ),
        }
        firsts = [c["first_token_ms"] for c in calls if c.get("first_token_ms") is not None]
        if firsts:
            entry["first_token_ms"] = _stats(firsts)
        writing = [c["generation_tokens_per_s"] for c in calls if c.get("generation_tokens_per_s")]
        if writing:
            entry["generation_tokens_per_s_p50"] = percentiles(writing, (50,))["p50"]
        out[name] = entry
    return out


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    totals = [r["ms"] for r in rows]
    all_ms = sum(totals) or 1.0
    names = sorted({name for r in rows for name in r["steps"]})
    steps = {}
    for name in names:
        values = [r["steps"].get(name, 0.0) for r in rows]
        steps[name] = {**_stats(values), "share": round(sum(values) / all_ms, 4)}
    latency = _stats(totals)
    first = _stats([r["first_token_ms"] for r in rows])
    measured = {**latency, "first_token_p50": first["p50"]}
    targets = {
        name: {"target_ms": limit, "measured_ms": measured[key], "met": bool(measured[key] <= limit)}
        for name, (key, limit) in TARGETS_MS.items()
    }
    return {
        "latency_ms": latency,
        "first_token_ms": first,
        "steps": steps,
        "llm": _llm_rows(rows),
        "metrics": {"recall@10": round(mean([r["recall@10"] for r in rows]), 4)},
        "plan_modes": {
            m: sum(1 for r in rows if r["plan_mode"] == m) for m in sorted({str(r["plan_mode"]) for r in rows})
        },
        "targets": targets,
    }


def bench_agent(
    dataset: Path | str,
    split: str,
    *,
    settings: Settings | None = None,
    max_queries: int | None = 100,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the agent on the first ``max_queries`` judged questions of ``split`` and report where the time went.

    Raises:
        InputError: on a folder that is not in BEIR layout or a split without judged questions.
    """
    settings = settings or get_settings()
    run = RunRecord(cli_command())
    root = Path(dataset)
    data, questions, source, embedder = judged_questions(root, split, settings, max_queries, progress=progress)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hopmem-bench-agent-") as tmp:
        run_settings = settings.model_copy(
            update={"data_dir": Path(tmp), "tenant": BEIR_TENANT, "remember_answers": False}
        )
        shutil.copyfile(source, run_settings.store_path)
        agent = Agent(Memory(run_settings), settings=run_settings)
        try:
            agent.ask(questions[0].text)  # warm-up: models load once, as in a running app; not measured
            for question in tqdm(questions, desc="agent", unit="q", disable=not progress):
                rows.append(_ask(agent, question, data.qrels.get(question.id, {})))
        finally:
            agent.close()
    return {
        "dataset": root.name,
        "split": split,
        "n_queries": len(rows),
        **_summary(rows),
        "settings": {
            name: getattr(settings, name)
            for name in (
                "llm_backend",
                "llm_model",
                "llm_threads",
                "llm_max_tokens",
                "reranker",
                "planner",
                "decompose",
                "agent_fusion",
                "treehop_hops",
                "top_k",
                "embed_query_runtime",
            )
            if hasattr(settings, name)
        },
        "embedder": embedder.name,
        "per_query": rows,
        **run.finish(),
    }
