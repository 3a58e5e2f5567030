"""``hopmem eval qa``: the agent end to end on a multi-hop data set, with variants side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from hopmem.app.common import echo_json as _echo_json
from hopmem.app.common import settings as _settings

PLANNERS = ("rules", "llm", "tuned")


def eval_qa(
    dataset: Annotated[Path, typer.Option(help="BEIR folder whose queries carry metadata.answers")],
    split: Annotated[str, typer.Option(help="qrels split, e.g. dev")] = "dev",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here (+ .queries.jsonl)")] = None,
    decompose: Annotated[
        bool, typer.Option("--decompose/--no-decompose", help="let the planner split questions (AQR)")
    ] = True,
    planner: Annotated[
        str | None,
        typer.Option(
            help="who decides whether and how to split: rules, llm (SmolLM2 prompted; on llama.cpp for the plan "
            "alone when --llm-backend none) or tuned (the GRPO-trained decomposer); comma-separated to compare them "
            "on the same questions, e.g. rules,llm,tuned (default HOPMEM_PLANNER)"
        ),
    ] = None,
    fusion: Annotated[Literal["rsf", "rrf"], typer.Option(help="fusion of the sub-query and hop lists")] = "rsf",
    reranker: Annotated[
        Literal["cross-encoder", "none"] | None, typer.Option(help="reranker (default HOPMEM_RERANKER)")
    ] = None,
    treehop: Annotated[bool, typer.Option("--treehop/--no-treehop", help="run the TreeHop hop step")] = True,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare/--no-compare",
            help="also run it with one piece off or swapped at a time (planner, fusion, reranker, TreeHop...)",
        ),
    ] = False,
    vary: Annotated[
        str | None,
        typer.Option(
            help="with --compare: only these pieces, comma-separated (decompose,planner,fusion,reranker,treehop)"
        ),
    ] = None,
    max_queries: Annotated[int | None, typer.Option(min=1, help="only the first N judged questions")] = None,
    remember: Annotated[
        bool, typer.Option("--remember/--no-remember", help="write answers back (later questions then see them)")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Run the agent on every judged question: answer EM/F1, evidence recall@5/@10, latency, LLM calls per question.

    The options describe one variant; --compare adds, on the same questions, that variant with one piece switched
    off or swapped at a time, and prints one row per variant.
    """
    from hopmem.eval.qa import PIECES, Variant, comparison_variants, evaluate_qa, variant_from_options

    config = _settings()
    planners = [p.strip() for p in (planner or config.planner).split(",") if p.strip()]
    unknown = [p for p in planners if p not in PLANNERS]
    if unknown or not planners:
        raise typer.BadParameter(f"unknown planner {unknown[0] if unknown else planner!r}; use {', '.join(PLANNERS)}")

    def variant(name: str) -> Variant:
        return variant_from_options(
            planner=name, decompose=decompose, fusion=fusion, reranker=reranker, treehop=treehop
        )

    base = variant(planners[0])
    pieces = [p.strip() for p in vary.split(",") if p.strip()] if vary else list(PIECES)
    variants = comparison_variants(base, default_reranker=config.reranker, pieces=pieces) if compare else [base]
    variants += [variant(p) for p in planners[1:]]
    variants = list({v.name: v for v in variants}.values())
    report = evaluate_qa(
        dataset,
        split,
        variants=variants,
        settings=config,
        json_out=json_out,
        max_queries=max_queries,
        remember=remember,
        progress=not quiet,
    )
    typer.echo(
        f"{'variant':<44} {'n':>4} {'EM':>6} {'F1':>6} {'R@5':>6} {'R@10':>6} {'p50 ms':>8} {'p95 ms':>8} {'LLM/q':>6}"
        "  plan modes (fallbacks)"
    )
    for row in report["variants"]:
        m, lat = row["metrics"], row["latency_ms"]
        modes = " ".join(f"{k}:{v}" for k, v in sorted(row.get("plan_modes", {}).items()))
        typer.echo(
            f"{row['variant']:<44} {row['n_queries']:>4} {m['em']:>6.3f} {m['f1']:>6.3f} {m['recall@5']:>6.3f} "
            f"{m['recall@10']:>6.3f} {lat['p50']:>8.0f} {lat['p95']:>8.0f} {row['llm_calls_per_query']:>6.2f}"
            f"  {modes} ({row.get('plan_sources', {}).get('fallback', 0)})"
        )
    if json_out is None:
        _echo_json(report)
