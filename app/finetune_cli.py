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
    for name, row in (("untrained (q - c)", untrained), (f"trained (epoch {best['epoch']})", best)):
        typer.echo(
            f"{name:<22} {row['recall']:>7.4f} {row['avg_chunks']:>7.2f} "
            f"{row['direct_recall']:>9.4f} (k={int(row['direct_k'])})"
        )
    typer.echo(f"saved to {output} ({report['parameters']:,} parameters, {report['seconds']} s)")
