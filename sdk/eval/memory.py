"""``hopmem eval memory``: conversation memory on LoCoMo-format chats, retrieval methods and the agent side by side.

Each conversation is stored alone (its own fresh store and tenant, so a question searches its own conversation only)
with :meth:`hopmem.Memory.add_conversation`; then every question runs through every method:

- ``lexical``, ``dense``, ``hybrid``: :meth:`hopmem.Memory.search_conversation` (hybrid fuses the two lists the
  conversation way, :data:`hopmem.memory.conversation_search.CONVERSATION_FUSION`);
- ``agent``: :meth:`hopmem.Agent.ask` with :data:`AGENT_SETTINGS` over a memory switched to conversation search
  (plan, retrieve each sub-query, fuse, cross-encoder rerank over a deeper pool, answer); its ranking is the
  reranked candidates, then the rest of the fused order. On conversation memories the rerank step keeps the fused
  list's 10 best first (the whole question's search fused with its sub-queries'; ``conversation_rerank_floor``),
  so the sub-queries decide the agent's recall@10 and the reranker's order within those 10 its recall@5
  (docs/conversations.md).

Recall is counted over retrieved **turns**: a memory that holds w turns takes w places of the ranking (in the order
of its turns), so a window of turns cannot raise recall by holding more text. For a question with evidence turns E
and a ranking of turns T, ``recall@k = |E ∩ T[:k]| / |E|``; a question none of whose evidence ids names a turn of
its conversation is left out of recall (``no_evidence`` counts them). Latency is the wall time of the method's call
per question (p50, p95). Answer F1 (token F1 against the gold answer) is given for the agent on questions with a gold
answer (categories 1-4); without an LLM the agent answers extractively, and the report says so (``f1_kind``).

The report holds aggregates and ids only (LoCoMo is CC BY-NC: no question or turn text in reports or logs).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from hopmem.eval.report import write_report
from hopmem.memory.conversation_search import CONVERSATION_FUSION, ConversationFusion
from hopmem.memory.conversations import Conversation, ConversationQuestion, load_conversations, turns_of
from hopmem.memory.datasets.metrics import mean, percentiles, token_f1
from hopmem.memory.errors import InputError
from hopmem.memory.run_record import RunRecord, cli_command
from hopmem.settings import Settings, get_settings

if TYPE_CHECKING:
    from hopmem.agents.llm.base import ChatLLM

log = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("lexical", "dense", "hybrid", "agent")
"""The methods ``evaluate_memory`` compares, by name."""

CATEGORIES: dict[int, str] = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
"""LoCoMo's question categories as its authors number them (checked against the questions: docs/conversations.md)."""

KS: tuple[int, ...] = (5, 10)
"""The cut-offs recall is reported at."""

AGENT_SETTINGS: dict[str, Any] = {"remember_answers": False, "retrieve_k": 30, "treehop_hops": 1, "hyde": True}
"""Settings the agent runs conversations with (on top of the caller's): no write-back (an answer would become
evidence for later questions), 30 memories per sub-query search, the LLM's guess at the answer searched as one more
list when an LLM is configured (``hyde``: chosen on LoCoMo conversations 1-2; on the held-out 3-5 it raised the
fused list's recall@10 in four categories and overall, and lowered open-domain by one question, docs/conversations.md;
without an LLM it is skipped), no TreeHop hop (its model was trained on
HotpotQA passages; on LoCoMo conversations 1-2 without a reranker it lowered recall@10 from 0.795 to 0.778 and took
four times as long). The reranker (the settings', the cross-encoder by default) reorders ``rerank_depth`` (20)
fused candidates: 40 was no better on conversation 2 (recall@10 0.769 against 0.778) and 40 % slower. Its memory
searches with the conversation search (:meth:`hopmem.Memory.use_conversation_search`), the same as ``hybrid``."""

MEMORY_OPTIONS: dict[str, Any] = {"window": 1, "embed_context": 1, "resolve_dates": True}
"""How conversations are stored for the evaluation (``Memory.add_conversation``'s options)."""


def evaluate_memory(
    dataset: Path | str,
    *,
    methods: Sequence[str] = METHODS,
    settings: Settings | None = None,
    json_out: Path | str | None = None,
    limit: int | None = None,
    conversations: Sequence[str] | None = None,
    window: int | None = None,
    embed_context: int | None = None,
    resolve_dates: bool | None = None,
    fusion: ConversationFusion | None = None,
    agent_settings: dict[str, Any] | None = None,
    llm: ChatLLM | None = None,
    plot: Path | str | None = None,
    progress: bool = True,
    workers: int = 1,
) -> dict[str, Any]:
    """Evaluate conversation memory on a LoCoMo-format file: recall@5/@10 over turns, latency, the agent's F1.

    Args:
        dataset: a LoCoMo-format JSON file (a list of samples with ``conversation`` and ``qa``).
        methods: some of :data:`METHODS`.
        settings: embedder, LLM and the rest (environment when omitted); ``llm_backend = "none"`` makes the agent
            answer extractively.
        json_out: where the report goes (+ ``<stem>.queries.jsonl``: ids, category and numbers per question).
        limit: only the first N questions in file order (conversations none of whose questions are kept are not
            stored at all).
        conversations: only these conversations (by ``sample_id``).
        window, embed_context, resolve_dates: how turns are stored (default :data:`MEMORY_OPTIONS`).
        fusion: hybrid's fusion (default :data:`~hopmem.memory.conversation_search.CONVERSATION_FUSION`).
        agent_settings: settings the agent runs with (default :data:`AGENT_SETTINGS`).
        llm: an LLM to answer with instead of the configured one.
        plot: write a PNG of recall@10 per category and method here.
        progress: show progress bars.
        workers: conversations evaluated at the same time, each in its own process (each loads its own models;
            the configured LLM, not one passed as ``llm``). The figures are the same as one by one; latencies are
            measured with the other workers running, so on a small machine they are longer.

    Returns:
        The report: ``methods`` (per method: ``overall`` and ``by_category`` recall@5/@10 with question counts,
        ``latency_ms`` p50/p95, and for the agent ``f1`` with ``f1_kind``), ``by_conversation``, ``splits`` (the
        first two conversations, where choices were made, and the rest), the settings and the run record.

    Raises:
        InputError: on an unknown method, a file that is not in the conversation shape, no question left, or
            ``workers`` above 1 with an ``llm`` object given.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive integer, not {workers!r}.")
    if workers > 1 and llm is not None:
        raise InputError("workers above 1 load the configured LLM in each process; do not pass an llm object.")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InputError(f"Unknown method {unknown[0] if unknown else ''!r}; use some of {', '.join(METHODS)}.")
    settings = settings or get_settings()
    run = RunRecord(cli_command())
    path = Path(dataset)
    loaded = load_conversations(path)
    if conversations:
        wanted = set(conversations)
        loaded = [c for c in loaded if c.id in wanted]
    selected = _select(loaded, limit)
    if not selected:
        raise InputError(f"No question to evaluate in {path} (check --conversations and --limit).")
    options = {
        "window": MEMORY_OPTIONS["window"] if window is None else window,
        "embed_context": MEMORY_OPTIONS["embed_context"] if embed_context is None else embed_context,
        "resolve_dates": MEMORY_OPTIONS["resolve_dates"] if resolve_dates is None else resolve_dates,
    }
    fusion = fusion or CONVERSATION_FUSION
    agent_changes = dict(AGENT_SETTINGS if agent_settings is None else agent_settings)
    if llm is None and "agent" in methods and settings.llm_backend != "none":
        from hopmem.agent_api import configured_llm

        llm = configured_llm(settings)
    rows: list[dict[str, Any]] = []
    ingest: list[dict[str, Any]] = []
    loads = [_load()]  # other work on the machine inflates latencies: sampled at the start and after each conversation
    total = sum(len(qs) for _, qs in selected)
    with tqdm(total=total * len(methods), desc="eval memory", unit="q", disable=not progress) as bar:
        if workers > 1 and len(selected) > 1:
            with_llm = llm is not None
            jobs = [(c, qs, list(methods), settings, options, fusion, agent_changes, with_llm) for c, qs in selected]

            def done(qs: list[ConversationQuestion]) -> None:
                bar.update(len(qs) * len(methods))
                loads.append(_load())

            results = _run_in_processes(jobs, workers, done)
        else:
            results = []
            for conv, qs in selected:
                results.append(
                    _run_conversation(conv, qs, methods, settings, options, fusion, agent_changes, llm, bar.update)
                )
                loads.append(_load())
        for info, conv_rows in results:
            ingest.append(info)
            rows.extend(conv_rows)
    report = _report(path, selected, rows, methods, ingest, settings, options, fusion, agent_changes, llm)
    if workers > 1 and "hybrid" in methods:
        conv, qs = selected[0]
        report["methods"]["hybrid"]["latency_ms_alone"] = _hybrid_alone(conv, qs, settings, options, fusion)
    report["settings"]["workers"] = workers
    report["settings"]["machine_load_1m"] = {"start": loads[0], "max": max(loads), "end": loads[-1]}
    report.update(run.finish())
    if plot:
        from hopmem.eval.memory_plot import plot_memory_report

        report["plot"] = Path(plot).name
        plot_memory_report(report, plot)
    return write_report(report, rows, json_out)


def _load() -> float:
    """The 1-minute load average (latencies are only comparable at a similar load)."""
    return round(os.getloadavg()[0], 2)


def _select(loaded: list[Conversation], limit: int | None) -> list[tuple[Conversation, list[ConversationQuestion]]]:
    out: list[tuple[Conversation, list[ConversationQuestion]]] = []
    left = limit if limit is not None else None
    for conv in loaded:
        questions = list(conv.questions)
        if left is not None:
            questions = questions[:left]
            left -= len(questions)
        if questions:
            out.append((conv, questions))
        if left is not None and left <= 0:
            break
    return out


def turn_ranking(memories: Sequence[Any]) -> list[str]:
    """The turns of ranked memories, each memory taking as many places as it holds turns (its turns in order).

    ``memories`` are records or search results (anything with ``metadata`` or ``record.metadata``). A turn repeated
    by a later memory takes a place again: overlapping windows cannot gain recall by repeating.
    """
    out: list[str] = []
    for item in memories:
        record = getattr(item, "record", item)
        out.extend(turns_of(getattr(record, "metadata", None)))
    return out


def turn_recall(ranking: Sequence[str], evidence: Sequence[str], k: int) -> float:
    """Share of ``evidence`` turns among the first ``k`` turns of ``ranking``."""
    wanted = set(evidence)
    return len(wanted.intersection(ranking[:k])) / len(wanted) if wanted else 0.0


def _run_conversation(
    conv: Conversation,
    questions: list[ConversationQuestion],
    methods: Sequence[str],
    settings: Settings,
    options: dict[str, Any],
    fusion: ConversationFusion,
    agent_changes: dict[str, Any],
    llm: ChatLLM | None,
    tick: Callable[[int], Any],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from hopmem.memory_api import Memory

    known = {t.dia_id for t in conv.turns}
    depth = max(KS)
    with tempfile.TemporaryDirectory(prefix="hopmem-eval-memory-") as tmp:
        run_settings = settings.model_copy(update={"data_dir": Path(tmp), "tenant": _tenant(conv.id)})
        memory = Memory(run_settings)
        agent = None
        try:
            added = memory.add_conversation(conv, progress=False, **options)
            info = {
                "conversation": conv.id,
                "turns": added.turns,
                "memories": added.memories,
                "quarantined": added.quarantined,
                "seconds": added.seconds,
            }
            if "agent" in methods:
                from hopmem.agent_api import Agent

                agent_settings = run_settings.model_copy(update=agent_changes)
                agent_memory = Memory(agent_settings)
                agent_memory.use_conversation_search(fusion)
                agent = Agent(agent_memory, settings=agent_settings, llm=llm)
            if any(m != "agent" for m in methods):
                memory.search_conversation(conv.questions[0].question, k=1)  # warm-up: loads the index and model
            rows = []
            for question in questions:
                evidence = [e for e in question.evidence if e in known]
                row: dict[str, Any] = {
                    "id": question.id,
                    "conversation": conv.id,
                    "category": question.category,
                    "evidence_turns": len(evidence),
                }
                for method in methods:
                    if method == "agent":
                        assert agent is not None
                        ranking, ms, extra = _ask_agent(agent, question)
                        row.update(extra)
                    else:
                        started = time.perf_counter()
                        found = memory.search_conversation(question.question, k=depth, mode=method, fusion=fusion)
                        ms = (time.perf_counter() - started) * 1000
                        ranking = turn_ranking(found)
                    row[method] = {f"recall@{k}": round(turn_recall(ranking, evidence, k), 4) for k in KS}
                    row[method]["ms"] = round(ms, 2)
                    tick(1)
                rows.append(row)
        finally:
            if agent is not None:
                agent.close()
            memory.close()
    return info, rows


def _hybrid_alone(
    conv: Conversation,
    questions: list[ConversationQuestion],
    settings: Settings,
    options: dict[str, Any],
    fusion: ConversationFusion,
) -> dict[str, Any]:
    """Hybrid search timed in this process alone, after the workers are done, over one conversation's questions.

    With several workers each latency is measured while the other workers run (and the agent's reranker with them),
    so on a small machine it says more about the load than about search; this measure is the same call with none of
    the evaluation's other work running (other programs on the machine still count: ``load_1m`` says how loaded).
    """
    from hopmem.memory_api import Memory

    with tempfile.TemporaryDirectory(prefix="hopmem-eval-memory-") as tmp:
        memory = Memory(settings.model_copy(update={"data_dir": Path(tmp), "tenant": _tenant(conv.id)}))
        try:
            memory.add_conversation(conv, progress=False, **options)
            memory.search_conversation(questions[0].question, k=1)  # warm-up, as in the evaluation
            times = []
            for question in questions:
                started = time.perf_counter()
                memory.search_conversation(question.question, k=max(KS), mode="hybrid", fusion=fusion)
                times.append((time.perf_counter() - started) * 1000)
        finally:
            memory.close()
    out: dict[str, Any] = {k: round(v, 2) for k, v in percentiles(times).items()}
    return {**out, "conversation": conv.id, "questions": len(times), "load_1m": _load()}


def _ask_agent(agent: Any, question: ConversationQuestion) -> tuple[list[str], float, dict[str, Any]]:
    started = time.perf_counter()
    try:
        result = agent.ask(question.question)
    except Exception as exc:  # one failing question is counted, the run goes on
        log.exception("question %s failed", question.id)
        return [], (time.perf_counter() - started) * 1000, {"agent_error": type(exc).__name__}
    ms = (time.perf_counter() - started) * 1000
    ids = agent_ranking(result.trace)
    records = {r.id: r for r in agent.memory.get_many(ids)}
    ranking = turn_ranking([records[i] for i in ids if i in records])
    extra: dict[str, Any] = {}
    if question.answers:
        extra["agent_f1"] = round(token_f1(result.answer, list(question.answers)), 4)
    plan: dict[str, Any] = next((s for s in result.trace if s["step"] == "plan"), {})
    extra["agent_plan"] = plan.get("mode")
    extra["agent_hyde"] = any((s.get("hyde") or {}).get("query") for s in result.trace if s["step"] == "retrieve")
    return ranking, ms, extra


def agent_ranking(trace: list[dict[str, Any]]) -> list[int]:
    """The memory ids of the agent's final ranking: the last rerank's order, then the rest of the fused order."""
    rerank = [s for s in trace if s["step"] == "rerank"]
    fuse = [s for s in trace if s["step"] == "fuse"]
    ids = [int(p["id"]) for p in rerank[-1].get("ranking") or []] if rerank else []
    ids += [int(p["id"]) for p in fuse[-1]["results"]] if fuse else []
    return list(dict.fromkeys(ids))


def _run_in_processes(
    jobs: list[tuple[Any, ...]], workers: int, done: Callable[[list[ConversationQuestion]], Any]
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each job's :func:`_run_conversation` in a pool of ``workers`` spawned processes; results in job order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results: list[tuple[dict[str, Any], list[dict[str, Any]]] | None] = [None] * len(jobs)
    context = multiprocessing.get_context("spawn")  # torch and SQLite handles do not survive a fork
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
        futures = {pool.submit(_conversation_job, *job): n for n, job in enumerate(jobs)}
        for future in as_completed(futures):
            n = futures[future]
            results[n] = future.result()
            done(jobs[n][1])
    return [r for r in results if r is not None]


def _conversation_job(
    conv: Conversation,
    questions: list[ConversationQuestion],
    methods: list[str],
    settings: Settings,
    options: dict[str, Any],
    fusion: ConversationFusion,
    agent_changes: dict[str, Any],
    with_llm: bool,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One conversation in a worker process: the configured LLM is loaded here (a model does not cross processes)."""
    llm = None
    if with_llm:
        from hopmem.agent_api import configured_llm

        llm = configured_llm(settings)
    return _run_conversation(conv, questions, methods, settings, options, fusion, agent_changes, llm, lambda _: None)


def _tenant(conv_id: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in conv_id)[:60]
    return cleaned or "conversation"


def _summary(rows: list[dict[str, Any]], method: str) -> dict[str, Any]:
    judged = [r for r in rows if r["evidence_turns"] > 0 and method in r]
    out: dict[str, Any] = {"n": len(judged)}
    for k in KS:
        out[f"recall@{k}"] = round(mean([r[method][f"recall@{k}"] for r in judged]), 4)
    return out


def _method_report(rows: list[dict[str, Any]], method: str, llm: ChatLLM | None) -> dict[str, Any]:
    by_category = {}
    for number, name in CATEGORIES.items():
        subset = [r for r in rows if r["category"] == number]
        if subset:
            by_category[name] = _summary(subset, method)
    others = sorted({r["category"] for r in rows} - set(CATEGORIES))
    for number in others:
        by_category[f"category {number}"] = _summary([r for r in rows if r["category"] == number], method)
    report: dict[str, Any] = {
        "overall": _summary(rows, method),
        "by_category": by_category,
        "latency_ms": {k: round(v, 2) for k, v in percentiles([r[method]["ms"] for r in rows if method in r]).items()},
    }
    if method == "agent":
        scored = [r["agent_f1"] for r in rows if "agent_f1" in r]
        report["f1"] = round(mean(scored), 4) if scored else None
        report["f1_questions"] = len(scored)
        report["f1_kind"] = "llm" if llm is not None else "extractive (no LLM configured)"
        report["errors"] = sum(1 for r in rows if "agent_error" in r)
        report["plan_modes"] = _counts(r.get("agent_plan") for r in rows)
        report["hyde_questions"] = sum(1 for r in rows if r.get("agent_hyde"))  # searched with the LLM's guess too
        if scored:
            report["f1_by_category"] = {
                name: round(mean([r["agent_f1"] for r in rows if r["category"] == n and "agent_f1" in r]), 4)
                for n, name in CATEGORIES.items()
                if any(r["category"] == n and "agent_f1" in r for r in rows)
            }
    return report


def _counts(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[str(value)] = out.get(str(value), 0) + 1
    return out


def _report(
    path: Path,
    selected: list[tuple[Conversation, list[ConversationQuestion]]],
    rows: list[dict[str, Any]],
    methods: Sequence[str],
    ingest: list[dict[str, Any]],
    settings: Settings,
    options: dict[str, Any],
    fusion: ConversationFusion,
    agent_changes: dict[str, Any],
    llm: ChatLLM | None,
) -> dict[str, Any]:
    ids = [conv.id for conv, _ in selected]
    by_conversation = {
        cid: {m: _summary([r for r in rows if r["conversation"] == cid], m) for m in methods} for cid in ids
    }
    splits: dict[str, Any] = {}
    if len(ids) > 2:
        for label, group in (("conversations 1-2", ids[:2]), (f"conversations 3-{len(ids)}", ids[2:])):
            subset = [r for r in rows if r["conversation"] in group]
            splits[label] = {"conversations": group, **{m: _summary(subset, m) for m in methods}}
    return {
        "dataset": path.name,
        "dataset_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "conversations": ids,
        "n_questions": len(rows),
        "no_evidence": sum(1 for r in rows if r["evidence_turns"] == 0),
        "categories": {str(k): v for k, v in CATEGORIES.items()},
        "recall": "over retrieved turns: a memory of w turns takes w places; recall@k = |evidence in first k turns| / "
        "|evidence|, questions without a known evidence turn left out",
        "methods": {m: _method_report(rows, m, llm) for m in methods},
        "by_conversation": by_conversation,
        "splits": splits,
        "ingest": ingest,
        "settings": {
            "memory": options,
            "fusion": {"method": fusion.method, "weights": dict(fusion.weights), "depth": fusion.depth},
            "agent": agent_changes if "agent" in methods else None,
            "embedder": settings.embedder,
            "reranker": agent_changes.get("reranker", settings.reranker) if "agent" in methods else None,
            "planner": agent_changes.get("planner", settings.planner) if "agent" in methods else None,
            "conversation_rerank": {
                key: agent_changes.get(f"conversation_rerank_{key}", getattr(settings, f"conversation_rerank_{key}"))
                for key in ("floor", "floor_list", "blend", "date", "speaker")
            }
            if "agent" in methods
            else None,
            "llm": llm.name if llm is not None else None,
        },
    }
