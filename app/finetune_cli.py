"""``hopmem finetune ...``: train hopmem's small models on a user's own data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from hopmem.app.common import settings as _settings

finetune_app = typer.Typer(help="Train hopmem's models on your own data.", no_args_is_help=True)


@finetune_app.command("treehop")
def finetune_treehop(
    dataset: Annotated[Path, typer.Option(help="BEIR folder whose questions have 2+ supporting passages")],
    output: Annotated[Path, typer.Option(help="folder for the weights, config, model card and metrics")],
    train_splits: Annotated[str, typer.Option(help="comma-separated qrels splits to train on")] = "train,dev",
    eval_split: Annotated[str, typer.Option(help="split whose first --holdout questions are held out")] = "dev",
    holdout: Annotated[int, typer.Option(min=0, help="questions of --eval-split never trained on")] = 250,
    val_fraction: Annotated[float, typer.Option(min=0.01, max=0.9, help="share of the rest for early stopping")] = 0.15,
    epochs: Annotated[int, typer.Option(min=1, help="most epochs")] = 60,
    patience: Annotated[int, typer.Option(min=1, help="epochs without validation gain before stopping")] = 10,
    batch_size: Annotated[int, typer.Option(min=2)] = 32,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    temperature: Annotated[float, typer.Option(min=1e-4)] = 0.05,
    n_hard: Annotated[int, typer.Option(min=1, help="hard negatives per chain")] = 32,
    top_n: Annotated[int, typer.Option(min=1, help="passages per hop in validation")] = 5,
    hops: Annotated[int, typer.Option(min=2, help="hops in validation")] = 2,
    seed: Annotated[int, typer.Option()] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Train a TreeHop next-query model for the configured embedder, with early stopping on held-out recall."""
    from hopmem.finetune.treehop_train import TreeHopTrainConfig, train_treehop
    from hopmem.memory.embeddings import load_embedder

    config = _settings()
    embedder = load_embedder(config.embedder, **config.embedder_options())
    train_config = TreeHopTrainConfig(
        dataset=str(dataset),
        output=str(output),
        train_splits=tuple(s.strip() for s in train_splits.split(",") if s.strip()),
        eval_split=eval_split,
        holdout=holdout,
        val_fraction=val_fraction,
        epochs=epochs,
        patience=patience,
        batch_size=batch_size,
        lr=lr,
        temperature=temperature,
        n_hard=n_hard,
        top_n=top_n,
        hops=hops,
        seed=seed,
    )
    report = train_treehop(
        train_config,
        embedder,
        cache_dir=config.cache_dir,
        chunk_size=config.chunk_size,
        chunk_overlap=config.chunk_overlap,
        progress=not quiet,
        command=" ".join(["hopmem", *sys.argv[1:]]),
    )
    untrained, best = report["validation_untrained"], report["validation_best"]
    typer.echo(f"{'validation':<22} {'recall':>7} {'chunks':>7} {'direct@k':>9}")
    for name, row in (("untrained (next query = question)", untrained), (f"trained (epoch {best['epoch']})", best)):
        typer.echo(
            f"{name:<22} {row['recall']:>7.4f} {row['avg_chunks']:>7.2f} "
            f"{row['direct_recall']:>9.4f} (k={int(row['direct_k'])})"
        )
    typer.echo(f"saved to {output} ({report['parameters']:,} parameters, {report['seconds']} s)")


RERANKER_RECIPES = ("cross-encoder",)


def default_reranker_datasets() -> list[Path]:
    """The product's default training data: the shared cranfield and hotpotqa folders, those that are present."""
    from hopmem.finetune.cross_encoder import default_training_datasets

    return default_training_datasets()


@finetune_app.command("reranker")
def finetune_reranker(
    recipe: Annotated[str, typer.Option(help="training recipe: cross-encoder (supervised, CPU-friendly)")],
    dataset: Annotated[
        list[Path] | None,
        typer.Option(
            help="BEIR folder to train on (repeat for several); default ../shared/data/cranfield and hotpotqa"
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="model folder (default: the agent's default cross-encoder in the cache)")
    ] = None,
    base_model: Annotated[str, typer.Option(help="encoder to start from")] = "all-MiniLM-L6-v2",
    max_length: Annotated[int, typer.Option(min=16, max=512, help="tokens per (query, passage) pair")] = 128,
    max_positives: Annotated[int, typer.Option(min=1, help="qrels positives per training query")] = 3,
    negatives: Annotated[int, typer.Option(min=0, help="hard negatives per training query")] = 3,
    mine_depth: Annotated[int, typer.Option(min=1, help="hybrid-search documents negatives are drawn from")] = 30,
    max_train_pairs: Annotated[int, typer.Option(min=1, help="cap on training pairs (whole queries)")] = 900,
    dev_queries: Annotated[int, typer.Option(min=0, help="dev queries per data set scored before/after")] = 25,
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    lr: Annotated[float, typer.Option(min=0.0)] = 5e-5,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="optimiser steps between checkpoints")] = 20,
    keep_checkpoints: Annotated[bool, typer.Option(help="keep the checkpoints after a finished run")] = False,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint in --output")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="do nothing when --output already holds a model (for make install)")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Train a reranker on the training splits of BEIR folders (split by query; no dev query is trained on)."""
    from hopmem.agents.rerank import default_cross_encoder_dir, is_cross_encoder_dir
    from hopmem.memory.errors import InputError

    if recipe != "cross-encoder":
        raise InputError(f"Unknown recipe {recipe!r}; the recipe available now is: {', '.join(RERANKER_RECIPES)}.")
    config = _settings()
    folder = output or default_cross_encoder_dir(config.cache_dir)
    if if_missing and is_cross_encoder_dir(folder):
        typer.echo(f"cross-encoder already trained: {folder}")
        return
    datasets = list(dataset) if dataset else default_reranker_datasets()
    if not datasets:
        raise InputError(
            "No training data: pass --dataset DIR (a BEIR folder), or put cranfield/hotpotqa under ../shared/data."
        )
    from hopmem.finetune.cross_encoder import CrossEncoderTrainConfig, train_cross_encoder
    from hopmem.memory.embeddings import load_embedder

    embedder = load_embedder(config.embedder, **config.embedder_options())
    train_config = CrossEncoderTrainConfig(
        datasets=tuple(str(d) for d in datasets),
        output=str(folder),
        base_model=base_model,
        max_length=max_length,
        max_positives=max_positives,
        n_negatives=negatives,
        mine_depth=mine_depth,
        max_train_pairs=max_train_pairs,
        dev_queries=dev_queries,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        checkpoint_every=checkpoint_every,
        keep_checkpoints=keep_checkpoints,
        resume=resume,
        seed=seed,
    )
    report = train_cross_encoder(
        train_config,
        embedder,
        cache_dir=config.cache_dir,
        chunk_size=config.chunk_size,
        chunk_overlap=config.chunk_overlap,
        progress=not quiet,
        command=" ".join(["hopmem", *sys.argv[1:]]),
    )
    typer.echo(f"{'dev pairs':<24} {'loss':>7} {'pair acc':>9} {'MRR':>7}")
    for name, row in (("untrained (fresh head)", report["dev_before"]), ("trained", report["dev_after"])):
        typer.echo(f"{name:<24} {row['loss']:>7.4f} {row['pairwise_accuracy']:>9.4f} {row['mrr']:>7.4f}")
    typer.echo(
        f"saved to {folder} ({report['train_pairs']} pairs, {report['steps']} steps, "
        f"{report['seconds']['total']} s, {report['pairs_per_second']} pairs/s)"
    )


def eval_rerank(
    dataset: Annotated[Path, typer.Option(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")],
    split: Annotated[str, typer.Option(help="qrels split, or train/dev derived from a single split")] = "dev",
    reranker: Annotated[
        list[str] | None,
        typer.Option(help="none, cross-encoder or cross-encoder-untrained; repeat to compare (first = headline)"),
    ] = None,
    candidates: Annotated[str, typer.Option(help="retrieval giving the candidates: bm25, dense or hybrid")] = "hybrid",
    depth: Annotated[int, typer.Option(min=1, max=1000, help="candidates reranked per query")] = 30,
    baselines: Annotated[bool, typer.Option(help="add bm25/dense/hybrid own order as rows")] = False,
    model: Annotated[Path | None, typer.Option(help="cross-encoder folder (default HOPMEM_RERANKER_MODEL)")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here (+ .queries.jsonl)")] = None,
    max_queries: Annotated[int | None, typer.Option(min=1, help="only the first N queries")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Rerank the top --depth candidates of each query and report nDCG@10, recall@10, MRR@10 and latency per query.

    `--reranker none` gives the candidates' own order; several --reranker values are compared on the same candidates
    and queries. Queries the cross-encoder was trained on are skipped.
    """
    from hopmem.app.common import echo_json
    from hopmem.eval_rerank import evaluate_rerank

    report = evaluate_rerank(
        dataset,
        split,
        reranker or ["cross-encoder"],
        candidates=candidates,
        depth=depth,
        baselines=baselines,
        settings=_settings(),
        model_dir=model,
        json_out=json_out,
        progress=not quiet,
        max_queries=max_queries,
    )
    typer.echo(
        f"{report['dataset']} {split}: {report['n_queries']} queries, top {depth} {candidates} candidates "
        f"({report['excluded_trained_queries']} skipped: trained on)"
    )
    typer.echo(
        f"{'candidates':<10} {'reranker':<24} {'nDCG@10':>8} {'R@10':>7} {'MRR@10':>7} {'p50 ms':>8} {'p95 ms':>8}"
    )
    for row in report["results"]:
        m, lat = row["metrics"], row["latency_ms"]
        typer.echo(
            f"{row['candidates']:<10} {row['reranker']:<24} {m['ndcg@10']:>8.4f} {m['recall@10']:>7.4f} "
            f"{m['mrr@10']:>7.4f} {lat['p50']:>8.1f} {lat['p95']:>8.1f}"
        )
    if json_out is None:
        echo_json(report)
