"""``hopmem eval qa``: the agent end to end on a BEIR-layout multi-hop data set, variants side by side.

For every question the agent (plan -> retrieve -> hop -> fuse -> rerank -> answer) runs over the indexed corpus;
the report gives answer exact match and token F1 against ``metadata.answers``, supporting-evidence recall@5 and @10
of the agent's final ranking (reranked candidates, documents in order of their best chunk), latency per question
and LLM calls per question, with one log line per question. Variants switch pieces off (decomposition, the
fusion method, the reranker, TreeHop) so one run compares them on the same questions.

The corpus is indexed once into the cache (:func:`hopmem.memory.datasets.store_loader.open_indexed_corpus`) and
each variant runs on its own copy, so write-back (off by default: a remembered answer would become evidence for later
questions and mix the variants) never touches the cache.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tqdm.auto import tqdm

from hopmem.agent_api import Agent, configured_llm
from hopmem.eval.report import indexed_corpus, write_report
from hopmem.memory.datasets.beir import load_dataset
from hopmem.memory.datasets.metrics import exact_match, mean, percentiles, recall_at_k, token_f1
from hopmem.memory.datasets.store_loader import BEIR_TENANT
from hopmem.memory.embeddings import load_embedder
from hopmem.memory.errors import InputError
from hopmem.memory.run_record import RunRecord, cli_command
from hopmem.memory_api import Memory
from hopmem.settings import Settings, get_settings

if TYPE_CHECKING:
    from hopmem.agents.llm.base import ChatLLM, Completion, Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One configuration of the agent: a name and the settings it changes."""

    name: str
    changes: dict[str, Any] = field(default_factory=dict)


def variant_from_options(
    *,
    decompose: bool = True,
    planner: str | None = None,
    fusion: str = "rsf",
    reranker: str | None = None,
    treehop: bool = True,
) -> Variant:
    """The variant the command-line options describe, named by what it switches off or changes.

    ``planner`` None means the settings' planner (``HOPMEM_PLANNER``, rules by default), so a Python caller gets
    the same agent as ``hopmem eval qa`` and ``hopmem ask``.
    """
    planner = planner or get_settings().planner
    changes: dict[str, Any] = {"decompose": decompose, "planner": planner, "agent_fusion": fusion}
    head = "no-decompose" if not decompose else {"llm": "aqr", "tuned": "aqr-tuned"}.get(planner, "aqr-rules")
    parts = [head, fusion]
    if reranker is not None:
        changes["reranker"] = reranker
        parts.append(f"rerank-{reranker}")
    if not treehop:
        changes["treehop_hops"] = 1
        parts.append("no-treehop")
    return Variant("+".join(parts), changes)


PIECES = ("decompose", "planner", "fusion", "reranker", "treehop")
"""What ``comparison_variants`` can switch off or swap, one at a time."""


def comparison_variants(
    base: Variant, *, default_reranker: str = "none", pieces: Sequence[str] = PIECES
) -> list[Variant]:
    """The asked variant and, beside it, the same with one piece switched off or swapped at a time.

    The reranker is swapped for the other one (``none`` <-> ``cross-encoder``) relative to the one in effect, which
    is ``default_reranker`` (the settings') unless the variant names one. ``pieces`` picks which of :data:`PIECES`
    are varied.

    Raises:
        InputError: on a piece that is not one of :data:`PIECES`.
    """
    unknown = [p for p in pieces if p not in PIECES]
    if unknown:
        raise InputError(f"Unknown piece {unknown[0]!r} to vary; use some of {', '.join(PIECES)}.")
    keys = {"decompose": "decompose", "planner": "planner", "fusion": "agent_fusion", "reranker": "reranker"}
    chosen = {keys.get(p, "treehop_hops") for p in pieces}
    out = [base]
    reranker = base.changes.get("reranker") or default_reranker
    flips: list[tuple[str, Any]] = [
        ("decompose", not base.changes.get("decompose", True)),
        ("planner", "rules" if base.changes.get("planner", "llm") == "llm" else "llm"),
        ("agent_fusion", "rrf" if base.changes.get("agent_fusion", "rsf") == "rsf" else "rsf"),
        ("reranker", "cross-encoder" if reranker == "none" else "none"),
        ("treehop_hops", 1),
    ]
    for key, value in flips:
        if key not in chosen or base.changes.get(key) == value:
            continue
        if key == "planner" and not base.changes.get("decompose", True):
            continue  # without decomposition nobody plans
        changes = {**base.changes, key: value}
        out.append(
            variant_from_options(
                decompose=changes.get("decompose", True),
                planner=changes.get("planner", "llm"),
                fusion=changes.get("agent_fusion", "rsf"),
                reranker=changes.get("reranker"),
                treehop=changes.get("treehop_hops", 2) != 1,
            )
        )
    return list({v.name: v for v in out}.values())


class CountingLLM:
    """An LLM wrapper that counts calls (every kind of generation) so the report can give LLM calls per question."""

    def __init__(self, inner: ChatLLM) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_window = inner.context_window
        self.calls = 0

    def complete(self, messages: list[Message], **kwargs: Any) -> Completion:
        self.calls += 1
        return self.inner.complete(messages, **kwargs)

    def complete_json(self, messages: list[Message], schema: dict[str, Any], **kwargs: Any) -> Any:
        self.calls += 1
        return self.inner.complete_json(messages, schema, **kwargs)

    def stream(self, messages: list[Message], **kwargs: Any) -> Iterator[str]:
        self.calls += 1
        return self.inner.stream(messages, **kwargs)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def evaluate_qa(
    dataset: Path | str,
    split: str,
    *,
    variants: Sequence[Variant],
    settings: Settings | None = None,
    json_out: Path | str | None = None,
    max_queries: int | None = None,
    remember: bool = False,
    progress: bool = True,
    llm: ChatLLM | None = None,
    planner_llms: Mapping[str, ChatLLM] | None = None,
) -> dict[str, Any]:
    """Run the agent on every judged question of ``split`` once per variant.

    Planners (``rules``, ``llm``, ``tuned``) compare in one run: the tuned planner's model is loaded once
    (:func:`hopmem.agents.tuned_planner.load_tuned_planner`) and shared by its variants; an ``llm`` variant without an
    answering LLM (``llm_backend="none"``) plans with SmolLM2 on llama.cpp alone, so answers stay extractive and only
    the plans differ. ``planner_llms`` gives either model instead (by planner name). Calls of the planning model count
    in ``llm_calls_per_query``; ``plan_sources`` counts where each plan came from (``fallback``: the model's plan was
    invalid and the rules planned).

    Returns:
        The first variant's report in the issue's shape (``dataset, split, variant, n_queries, metrics, latency_ms,
        llm_calls_per_query``) with ``variants`` holding every variant's report, the first included.

    Raises:
        InputError: on a folder that is not in BEIR layout, a split without judged questions, or no variant.
    """
    if not variants:
        raise InputError("Give at least one variant to evaluate.")
    settings = settings or get_settings()
    run = RunRecord(cli_command())
    root = Path(dataset)
    data, questions, source, embedder = judged_questions(root, split, settings, max_queries, progress=progress)
    shared_llm = llm if llm is not None else configured_llm(settings)
    counter = CountingLLM(shared_llm) if shared_llm is not None else None
    planners = dict(planner_llms or {})
    reports: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    for variant in variants:
        planner = _planner_model(variant, settings, shared_llm, planners)
        reports.append(
            _run_variant(
                variant, root, split, data.qrels, questions, source, settings, counter, remember, progress, planner
            )
        )
        result = _write(reports, shared_llm, embedder.name, remember, json_out, run)  # a cut run keeps what it measured
    return result


def _planner_model(
    variant: Variant, settings: Settings, answering: ChatLLM | None, planners: dict[str, ChatLLM]
) -> CountingLLM | None:
    """The planning model of ``variant`` besides the answering LLM (loaded once into ``planners``), counted."""
    name = str(variant.changes.get("planner", settings.planner))
    if not variant.changes.get("decompose", True) or name == "rules" or (name == "llm" and answering is not None):
        return None
    if name not in planners:
        if name == "tuned":
            from hopmem.agents.tuned_planner import load_tuned_planner

            planners[name] = load_tuned_planner(settings.planner_adapter or None, settings.cache_dir)
        else:
            prompted = configured_llm(settings.model_copy(update={"llm_backend": "llamacpp"}))
            if prompted is None:
                return None
            planners[name] = prompted
    if not isinstance(planners[name], CountingLLM):
        planners[name] = CountingLLM(planners[name])
    return cast(CountingLLM, planners[name])


def judged_questions(
    root: Path, split: str, settings: Settings, max_queries: int | None, *, progress: bool
) -> tuple[Any, list[Any], Path, Any]:
    """The data set, its first ``max_queries`` judged questions of ``split``, the cached indexed store's file and the
    embedder: what every run of the agent over a BEIR folder starts from.

    Raises:
        InputError: on a folder that is not in BEIR layout or a split without judged questions.
    """
    data = load_dataset(root, split)
    questions = list(data.queries[:max_queries] if max_queries else data.queries)
    if not questions:
        raise InputError(f"No question of {root} is judged in split {split!r}; check the qrels file.")
    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    cached = indexed_corpus(root, embedder, settings, progress=progress)
    source = Path(cached.path)
    cached.close()
    return data, questions, source, embedder


def _write(
    reports: list[dict[str, Any]],
    llm: ChatLLM | None,
    embedder: str,
    remember: bool,
    json_out: Path | str | None,
    run: RunRecord,
) -> dict[str, Any]:
    """The report of the variants run so far, written to ``json_out`` (and its per-question log) when given."""
    result = {**{k: v for k, v in reports[0].items() if k != "per_query"}, "variants": []}
    result["variants"] = [{k: v for k, v in r.items() if k != "per_query"} for r in reports]
    result.update(
        {
            "llm": llm.name if llm is not None else None,
            "embedder": embedder,
            "remember": remember,
            **run.finish(),
        }
    )
    rows = ({"variant": report["variant"], **row} for report in reports for row in report["per_query"])
    return write_report(result, rows, json_out)


def _run_variant(
    variant: Variant,
    root: Path,
    split: str,
    qrels: dict[str, dict[str, int]],
    questions: Sequence[Any],
    source: Path,
    settings: Settings,
    counter: CountingLLM | None,
    remember: bool,
    progress: bool,
    planner: CountingLLM | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hopmem-qa-") as tmp:
        run_settings = settings.model_copy(
            update={**variant.changes, "data_dir": Path(tmp), "tenant": BEIR_TENANT, "remember_answers": remember}
        )
        shutil.copyfile(source, run_settings.store_path)
        memory = Memory(run_settings)  # load_embedder caches per process: every variant shares one embedder
        agent = Agent(memory, settings=run_settings, llm=counter, planner_llm=planner)
        rows: list[dict[str, Any]] = []
        try:
            for question in tqdm(questions, desc=variant.name, unit="q", disable=not progress, leave=False):
                rows.append(_ask(agent, question, qrels.get(question.id, {}), counter, planner))
        finally:
            agent.close()
    answered = [r for r in rows if "error" not in r]
    return {
        "dataset": root.name,
        "split": split,
        "variant": variant.name,
        "settings": {**variant.changes, "hyde": run_settings.hyde and counter is not None},
        "n_queries": len(rows),
        "errors": len(rows) - len(answered),
        "metrics": {
            "em": round(mean([r["em"] for r in answered]), 4),
            "f1": round(mean([r["f1"] for r in answered]), 4),
            "recall@5": round(mean([r["recall@5"] for r in answered]), 4),
            "recall@10": round(mean([r["recall@10"] for r in answered]), 4),
        },
        "latency_ms": {k: round(v, 1) for k, v in percentiles([r["ms"] for r in answered]).items()},
        "llm_calls_per_query": round(mean([r["llm_calls"] for r in answered]), 3),
        "plan_modes": _counts(r.get("plan_mode") for r in answered),
        "plan_sources": _counts(r.get("plan_source") for r in answered),
        "planner_model": planner.name if planner is not None else None,
        "rerankers": _counts(r.get("reranker") for r in answered),
        "per_query": rows,
    }


def _ask(
    agent: Agent,
    question: Any,
    relevant: dict[str, int],
    counter: CountingLLM | None,
    planner: CountingLLM | None = None,
) -> dict[str, Any]:
    answers = [str(a) for a in (question.metadata or {}).get("answers", [])]
    before = (counter.calls if counter is not None else 0) + (planner.calls if planner is not None else 0)
    started = time.perf_counter()
    try:
        result = agent.ask(question.text)
    except Exception as exc:  # one failing question is logged and counted, the run goes on
        log.exception("question %s failed", question.id)
        return {"query_id": question.id, "error": f"{type(exc).__name__}: {exc}"}
    ms = (time.perf_counter() - started) * 1000
    steps = {s["step"]: s for s in result.trace}
    ranking = ranked_documents(agent, result.trace)
    return {
        "query_id": question.id,
        "question": question.text,
        "answer": result.answer,
        "gold": answers,
        "em": exact_match(result.answer, answers) if answers else 0.0,
        "f1": token_f1(result.answer, answers) if answers else 0.0,
        "recall@5": recall_at_k(ranking, relevant, 5),
        "recall@10": recall_at_k(ranking, relevant, 10),
        "ranking": ranking[:10],
        "ms": ms,
        "llm_calls": (counter.calls if counter is not None else 0)
        + (planner.calls if planner is not None else 0)
        - before,
        "plan_mode": steps.get("plan", {}).get("mode"),
        "plan_source": steps.get("plan", {}).get("source"),
        "reranker": steps.get("rerank", {}).get("reranker"),
        "subqueries": steps.get("plan", {}).get("queries"),
        "rounds": sum(1 for s in result.trace if s["step"] == "retrieve"),
    }


def ranked_documents(agent: Agent, trace: list[dict[str, Any]]) -> list[str]:
    """The documents of the agent's final ranking (last rerank step, then the fused order), best chunk first."""
    rerank = [s for s in trace if s["step"] == "rerank"]
    fuse = [s for s in trace if s["step"] == "fuse"]
    ids = [int(p["id"]) for p in rerank[-1].get("ranking") or []] if rerank else []
    ids += [int(p["id"]) for p in fuse[-1]["results"]] if fuse else []
    ids = list(dict.fromkeys(ids))
    external = {r.id: r.external_id for r in agent.memory.store.get(agent.memory.tenant, ids)}
    return list(dict.fromkeys(str(external[i]) for i in ids if external.get(i)))


def _counts(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[str(value)] = out.get(str(value), 0) + 1
    return out
