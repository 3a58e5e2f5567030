"""The conversation parts of the CLI: ``hopmem eval memory`` and the conversation branch of ``hopmem ingest``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hopmem.app.common import echo_json as _echo_json
from hopmem.app.common import settings as _settings


def ingest_conversations(paths: list[Path], *, window: int, as_json: bool, quiet: bool) -> None:
    """Store every conversation of LoCoMo-format files in the current tenant, one memory per turn (or window).

    Each conversation's memories carry the tag ``conversation:<sample_id>``, so a search can be confined to one.
    """
    from hopmem.memory.conversations import load_conversations
    from hopmem.memory_api import Memory

    reports: list[dict[str, Any]] = []
    with Memory(_settings()) as memory:
        for path in paths:
            for conversation in load_conversations(path):
                report = memory.add_conversation(conversation, window=window, progress=not quiet)
                reports.append({"file": str(path), **report.to_dict()})
        stats = memory.stats()
    if as_json:
        brief = [{k: v for k, v in r.items() if k not in ("memory_ids", "turn_memory")} for r in reports]
        _echo_json({"conversations": brief, "store": stats})
        return
    for r in reports:
        typer.echo(
            f"conversation {r['conversation']}: {r['turns']} turns as {r['memories']} memories "
            f"({r['added']} new, {r['quarantined']} held for review) in {r['seconds']:.1f} s"
        )
    typer.echo(f"The store now holds {stats['memories']} memories in {stats['path']}.")


def eval_memory(
    dataset: Annotated[Path, typer.Option(help="LoCoMo-format JSON file (conversations with qa)")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here (+ .queries.jsonl)")] = None,
    methods: Annotated[
        str, typer.Option(help="comma-separated: lexical, dense, hybrid, agent")
    ] = "lexical,dense,hybrid,agent",
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N questions (file order)")] = None,
    conversations: Annotated[
        str | None, typer.Option(help="only these conversations (comma-separated sample ids)")
    ] = None,
    window: Annotated[int | None, typer.Option(min=1, help="turns per memory (default 1)")] = None,
    plot: Annotated[Path | None, typer.Option(help="write a PNG of recall per category and method")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="conversations evaluated at once, one process each (same figures)")
    ] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Conversation memory: per question category, evidence recall@5/@10 over retrieved turns, latency p50/p95 per
    method, and the agent's answer F1 (extractive without an LLM). Each conversation is its own memory."""
    from hopmem.eval.memory import evaluate_memory

    report = evaluate_memory(
        dataset,
        methods=[m.strip() for m in methods.split(",") if m.strip()],
        settings=_settings(),
        json_out=json_out,
        limit=limit,
        conversations=[c.strip() for c in conversations.split(",") if c.strip()] if conversations else None,
        window=window,
        plot=plot,
        progress=not quiet,
        workers=workers,
    )
    groups = ["overall", *next(iter(report["methods"].values()))["by_category"]]
    typer.echo(
        f"{report['dataset']}: {report['n_questions']} questions in {len(report['conversations'])} conversations"
    )
    typer.echo(f"{'method':<8} {'group':<12} {'n':>4} {'R@5':>6} {'R@10':>6}")
    for method, data in report["methods"].items():
        for group in groups:
            cell = data["overall"] if group == "overall" else data["by_category"][group]
            typer.echo(f"{method:<8} {group:<12} {cell['n']:>4} {cell['recall@5']:>6.3f} {cell['recall@10']:>6.3f}")
        lat = data["latency_ms"]
        line = f"{method:<8} latency p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms"
        if data.get("f1") is not None:
            line += f"; answer F1 {data['f1']:.3f} ({data['f1_kind']})"
        typer.echo(line)
    if json_out is None:
        _echo_json(report)
