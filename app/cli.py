"""The ``hopmem`` command line. Every failure a user can fix prints one sentence and exits non-zero."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from hopmem.app.bench_cli import bench_app
from hopmem.app.common import OVERRIDES as _OVERRIDES
from hopmem.app.common import echo_json as _echo_json
from hopmem.app.common import settings as _settings
from hopmem.app.conversation_cli import eval_memory
from hopmem.app.eval_qa_cli import eval_qa
from hopmem.app.finetune_cli import eval_rerank, finetune_app
from hopmem.app.mcp_cli import mcp
from hopmem.app.memory_cli import memory_app
from hopmem.app.serve_cli import keys_app, serve
from hopmem.app.trust_cli import trust_app
from hopmem.app.ui_cli import ui
from hopmem.memory.errors import HopmemError
from hopmem.settings import Settings

app = typer.Typer(
    help="hopmem: local-first agentic RAG and memory. Ingest documents, ask questions, evaluate retrieval.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Show the configuration in effect.", no_args_is_help=True)
models_app = typer.Typer(help="Check and list the models hopmem uses.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate on BEIR-format data sets and LoCoMo-format conversations.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
eval_app.command("qa")(eval_qa)
eval_app.command("memory")(eval_memory)

app.add_typer(memory_app, name="memory")
app.add_typer(bench_app, name="bench")
app.add_typer(trust_app, name="trust")
app.add_typer(finetune_app, name="finetune")
app.add_typer(keys_app, name="keys")
app.command("serve")(serve)
app.command("mcp")(mcp)
app.command("ui")(ui)


@app.callback()
def _global(
    data_dir: Annotated[Path | None, typer.Option(help="data directory (HOPMEM_DATA_DIR)")] = None,
    tenant: Annotated[str | None, typer.Option(help="tenant to act for (HOPMEM_TENANT)")] = None,
    llm_backend: Annotated[str | None, typer.Option(help="llamacpp, openai or none (HOPMEM_LLM_BACKEND)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what happens")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    _OVERRIDES.clear()
    for key, value in (("data_dir", data_dir), ("tenant", tenant), ("llm_backend", llm_backend)):
        if value is not None:
            _OVERRIDES[key] = value


@app.command()
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="files, folders, BEIR corpus.jsonl or LoCoMo-format conversation .json files")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    input_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto (a .json file in the LoCoMo shape is a conversation), documents or conversations",
        ),
    ] = "auto",
    window: Annotated[int, typer.Option(min=1, help="conversations: turns per memory")] = 1,
) -> None:
    """Read, chunk, embed and store documents (.txt .md .html .pdf .docx, BEIR corpus.jsonl), or store multi-session
    conversations (LoCoMo format) one memory per turn with speaker, session, date and turn ids."""
    from hopmem.memory.conversations import is_conversation_file
    from hopmem.memory.errors import InputError
    from hopmem.memory_api import Memory

    if input_format not in ("auto", "documents", "conversations"):
        raise InputError(f"Unknown --format {input_format!r}; use auto, documents or conversations.")
    if input_format == "conversations" or (
        input_format == "auto" and paths and all(is_conversation_file(p) for p in paths)
    ):
        from hopmem.app.conversation_cli import ingest_conversations

        ingest_conversations(paths, window=window, as_json=as_json, quiet=quiet)
        return
    with Memory(_settings()) as memory:
        report = memory.ingest(paths, progress=not quiet)
        stats = memory.stats()
    if as_json:
        _echo_json({**report.to_dict(), "store": stats})
    else:
        typer.echo(
            f"stored {report.added} new and {report.replaced} changed documents ({report.chunks} chunks); "
            f"{report.unchanged} unchanged, {len(report.skipped)} skipped, {len(report.errors)} failed. "
            f"The store now holds {stats['documents']} documents in {stats['path']}."
        )
        for path, reason in report.skipped:
            typer.echo(f"  skipped {path}: {reason}")
    for _path, message in report.errors:
        typer.echo(f"error: {message}", err=True)
    if report.errors:
        raise typer.Exit(1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="the question")],
    as_json: Annotated[bool, typer.Option("--json", help='print {"answer", "citations", "trace"} as JSON')] = False,
) -> None:
    """Answer a question from the memory, with numbered citations."""
    from hopmem.agent_api import Agent, validate_question

    settings = _settings()
    validate_question(question, settings.max_question_chars)
    agent = Agent(settings=settings)
    try:
        answer = agent.ask(question)
    finally:
        agent.close()
    _echo_json(answer.to_dict()) if as_json else typer.echo(answer.to_text())


@app.command()
def chat(
    thread: Annotated[str | None, typer.Option(help="conversation id to resume (printed at the start)")] = None,
) -> None:
    """Talk with the agent; the conversation is checkpointed and can be resumed with --thread."""
    import uuid

    from hopmem.agent_api import Agent

    agent = Agent(settings=_settings())
    thread_id = thread or uuid.uuid4().hex[:12]
    typer.echo(f"thread {thread_id} (resume with: hopmem chat --thread {thread_id}); /exit or Ctrl-D ends", err=True)
    try:
        for line in sys.stdin:
            question = line.strip()
            if not question:
                continue
            if question in ("/exit", "/quit"):
                break
            try:
                answer = agent.chat(question, thread_id=thread_id)
            except HopmemError as exc:
                typer.echo(f"error: {exc}", err=True)
                continue
            typer.echo(answer.to_text() + "\n")
    finally:
        agent.close()


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    mode: Annotated[str, typer.Option(help="lexical, dense or hybrid")] = "hybrid",
    k: Annotated[int, typer.Option(min=1, max=1000, help="results to show")] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Search the memory without answering."""
    from hopmem.memory_api import Memory

    with Memory(_settings()) as memory:
        results = memory.search(query, k=k, mode=mode)
    if as_json:
        _echo_json([r.to_dict() for r in results])
        return
    for rank, r in enumerate(results, start=1):
        typer.echo(f"{rank:>3}. [{r.id}] {r.record.title} ({r.score:.4f})  {' '.join(r.record.content.split())[:100]}")


@app.command()
def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Count what the store holds for the tenant."""
    from hopmem.memory_api import Memory

    with Memory(_settings()) as memory:
        data = memory.stats()
    _echo_json(data) if as_json else typer.echo("\n".join(f"{k}: {v}" for k, v in data.items()))


@app.command()
def demo(
    question: Annotated[str, typer.Argument(help="question about the bundled sample")] = (
        "How do honeybees tell other bees where the flowers are?"
    ),
) -> None:
    """Answer a question over the bundled sample documents (in a temporary store)."""
    import tempfile

    from hopmem.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="hopmem-demo-") as tmp:
        answer, report = run_demo(question, _settings().model_copy(update={"data_dir": Path(tmp)}))
    typer.echo(f"Ingested {report.added} sample documents ({report.chunks} chunks).\n")
    typer.echo(f"Q: {question}\nA: {answer.to_text()}")


@config_app.command("show")
def config_show(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the effective settings (defaults < config file < HOPMEM_* variables < options)."""
    from hopmem.settings import config_file

    settings = _settings()
    data = settings.effective()
    if as_json:
        _echo_json({"config_file": str(config_file()) if config_file() else None, "settings": data})
        return
    typer.echo(f"# config file: {config_file() or '(none)'}")
    for key, value in data.items():
        typer.echo(f"{key} = {json.dumps(value)}")


@models_app.command("check")
def models_check() -> None:
    """Load every configured model offline and run it once on a realistic input (a chat of 500+ tokens, a batch of
    passages), in a child process, so that a crash of a native library is reported in one sentence."""
    from hopmem.models_check import check_models

    check_models(_settings(), echo=typer.echo)


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Annotated[Path, typer.Option(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")],
    split: Annotated[str, typer.Option(help="qrels split, e.g. test or dev")] = "test",
    method: Annotated[str, typer.Option(help="bm25, dense, hybrid, or treehop (multi-hop, side by side)")] = "hybrid",
    k: Annotated[int, typer.Option(min=1, max=1000, help="documents retrieved per query")] = 10,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here (+ .queries.jsonl)")] = None,
    max_queries: Annotated[int | None, typer.Option(min=1, help="only the first N queries")] = None,
    vector_backend: Annotated[
        str | None, typer.Option(help="exact or qdrant (in memory); default HOPMEM_VECTOR_BACKEND")
    ] = None,
    hops: Annotated[int, typer.Option(min=2, max=8, help="treehop: layers of the hop tree")] = 2,
    top_n: Annotated[int, typer.Option(min=1, max=100, help="treehop: passages per query embedding")] = 5,
    treehop_model: Annotated[
        Path | None, typer.Option(help="treehop: model folder (default HOPMEM_TREEHOP_MODEL or the packaged one)")
    ] = None,
    llm_baseline: Annotated[
        bool, typer.Option("--llm-baseline/--no-llm-baseline", help="treehop: run the LLM query-rewrite baseline")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Index a BEIR data set and report nDCG@10, recall@5/10, MRR@10 and latency.

    With --method treehop: direct retrieval (k = 5, 10 and TreeHop's average number of chunks), TreeHop at 2 and 3
    hops and the iterative LLM-rewrite baseline, side by side on the same questions (those the TreeHop model was not
    trained on): recall, chunks retrieved and latency per question.
    """
    config = _settings()
    if vector_backend is not None:
        config = _settings(vector_backend=vector_backend)
    if method == "treehop":
        _eval_treehop(dataset, split, hops, top_n, treehop_model, llm_baseline, config, json_out, max_queries, quiet)
        return
    from hopmem.eval.retrieval import evaluate_retrieval

    report = evaluate_retrieval(
        dataset,
        split,
        method,
        k=k,
        settings=config,
        json_out=json_out,
        progress=not quiet,
        max_queries=max_queries,
    )
    m, lat = report["metrics"], report["latency_ms"]
    typer.echo(
        f"{'dataset':<12} {'split':<6} {'method':<7} {'n':>4} {'nDCG@10':>8} {'R@5':>6} {'R@10':>6} {'MRR@10':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7}"
    )
    typer.echo(
        f"{Path(report['dataset']).name:<12} {split:<6} {method:<7} {report['n_queries']:>4} {m['ndcg@10']:>8.4f} "
        f"{m['recall@5']:>6.4f} {m['recall@10']:>6.4f} {m['mrr@10']:>7.4f} {lat['p50']:>7.2f} {lat['p95']:>7.2f}"
    )
    if json_out is None:
        _echo_json(report)


eval_app.command("rerank")(eval_rerank)


def _eval_treehop(
    dataset: Path,
    split: str,
    hops: int,
    top_n: int,
    model: Path | None,
    llm_baseline: bool,
    config: Settings,
    json_out: Path | None,
    max_queries: int | None,
    quiet: bool,
) -> None:
    from hopmem.eval.multihop import evaluate_multihop

    report = evaluate_multihop(
        dataset,
        split,
        hops=hops,
        top_n=top_n,
        settings=config,
        model_dir=model,
        llm_baseline=llm_baseline,
        json_out=json_out,
        progress=not quiet,
        max_queries=max_queries,
    )
    typer.echo(
        f"{report['dataset']} {split}: {report['n_queries']} questions "
        f"({report['excluded_trained_questions']} skipped: the TreeHop model was trained on them)"
    )
    typer.echo(f"{'method':<18} {'hops':>4} {'top_n':>5} {'recall':>7} {'chunks':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for row in report["rows"]:
        typer.echo(
            f"{row['method']:<18} {row['hops']:>4} {row['top_n']:>5} {row['recall']:>7.4f} {row['avg_chunks']:>7.2f} "
            f"{row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f}"
        )
    hop = report["hop_from_supporting_passage"]
    if hop["questions"]:
        typer.echo(
            f"second hop from a supporting passage ({hop['questions']} questions, {hop['missing_documents']} missing "
            f"documents) found: treehop {hop['found_share']['treehop']:.4f}, "
            f"question again {hop['found_share']['question']:.4f}"
        )
    if report["llm_baseline_note"]:
        typer.echo(report["llm_baseline_note"])
    if json_out is None:
        _echo_json(report)


def _fail(exc: HopmemError) -> NoReturn:
    typer.echo(f"error: {exc}", err=True)
    raise SystemExit(exc.exit_code)


def main() -> None:
    """Entry point of the ``hopmem`` script."""
    try:
        app()
    except HopmemError as exc:
        _fail(exc)
