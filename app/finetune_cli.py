"""``hopmem finetune ...``: train hopmem's small models on a user's own data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer

from hopmem.app.common import settings as _settings
from hopmem.app.finetune_decomposer_cli import finetune_decomposer

finetune_app = typer.Typer(help="Train hopmem's models on your own data.", no_args_is_help=True)


@finetune_app.command("treehop")
def finetune_treehop(
    dataset: Annotated[
        list[Path],
        typer.Option(
            help="BEIR folder whose questions have 2+ supporting passages (repeat for several, trained together)"
        ),
    ],
    output: Annotated[Path, typer.Option(help="folder for the weights, config, model card and metrics")],
    train_splits: Annotated[str, typer.Option(help="comma-separated qrels splits to train on")] = "train,dev",
    eval_split: Annotated[str, typer.Option(help="split whose first --holdout questions are held out")] = "dev",
    holdout: Annotated[int, typer.Option(min=0, help="questions of --eval-split never trained on")] = 250,
    val_fraction: Annotated[float, typer.Option(min=0.01, max=0.9, help="share of the rest for early stopping")] = 0.15,
    test_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="share of the rest measured after training (the agent's rule)")
    ] = 0.15,
    epochs: Annotated[int, typer.Option(min=1, help="most epochs")] = 60,
    patience: Annotated[int, typer.Option(min=1, help="epochs without validation gain before stopping")] = 10,
    batch_size: Annotated[int, typer.Option(min=2)] = 32,
    lr: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    temperature: Annotated[float, typer.Option(min=1e-4)] = 0.05,
    n_hard: Annotated[int, typer.Option(min=1, help="hard negatives per chain")] = 32,
    n_context: Annotated[int, typer.Option(min=0, help="the question's own context paragraphs per chain")] = 8,
    n_hybrid: Annotated[int, typer.Option(min=0, help="hybrid-search candidates per question in the pool")] = 16,
    attn_size: Annotated[int, typer.Option(min=1, help="width of each head's projections")] = 192,
    mlp_size: Annotated[int, typer.Option(min=1, help="width of each head's MLP")] = 384,
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
        datasets=tuple(str(d) for d in dataset),
        output=str(output),
        train_splits=tuple(s.strip() for s in train_splits.split(",") if s.strip()),
        eval_split=eval_split,
        holdout=holdout,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        epochs=epochs,
        patience=patience,
        batch_size=batch_size,
        lr=lr,
        temperature=temperature,
        n_hard=n_hard,
        n_context=n_context,
        n_hybrid=n_hybrid,
        attn_size=attn_size,
        mlp_size=mlp_size,
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
    if "test_trained" in report:
        for name, row in (("test untrained", report["test_untrained"]), ("test trained", report["test_trained"])):
            typer.echo(
                f"{name:<22} {row['recall']:>7.4f} {row['avg_chunks']:>7.2f} "
                f"{row['direct_recall']:>9.4f} (k={int(row['direct_k'])})"
            )
    typer.echo(f"agent uses the {report['choice']['use']} model: {report['choice']['reason']}")
    typer.echo(f"saved to {output} ({report['parameters']:,} parameters, {report['seconds']} s)")


RERANKER_RECIPES = ("prorank", "rank-r1", "cross-encoder")


def default_reranker_datasets() -> list[Path]:
    """The product's default training data: the shared cranfield, hotpotqa and hotpotqa-extra folders that exist."""
    from hopmem.finetune.cross_encoder import default_training_datasets

    return default_training_datasets()


@finetune_app.command("reranker")
def finetune_reranker(
    recipe: Annotated[
        str,
        typer.Option(
            help="prorank (pointwise LLM: GRPO warm-up + score learning), rank-r1 (setwise reasoning, GRPO) or "
            "cross-encoder (supervised MiniLM)"
        ),
    ] = "prorank",
    dataset: Annotated[
        list[Path] | None,
        typer.Option(
            help="BEIR folder to train on (repeat for several); default ../shared/data/cranfield, hotpotqa, "
            "hotpotqa-extra"
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            help="model folder (default: the recipe's folder under HOPMEM_CACHE_DIR/models, where the agent "
            "looks for it)"
        ),
    ] = None,
    base_model: Annotated[
        str,
        typer.Option(
            help="model to start from (default: SmolLM2-135M-Instruct; all-MiniLM-L6-v2 for the cross-encoder)"
        ),
    ] = "",
    max_positives: Annotated[int, typer.Option(min=1, help="qrels positives per training query")] = 3,
    negatives: Annotated[int | None, typer.Option(min=0, help="hard negatives per training query")] = None,
    mine_depth: Annotated[int, typer.Option(min=1, help="hybrid-search documents negatives are drawn from")] = 30,
    own_distractors: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="negatives per question from its own distractor paragraphs (HotpotQA-style folders; default 3 for "
            "the LLM recipes, 0 for the cross-encoder)",
        ),
    ] = None,
    max_train_pairs: Annotated[
        int | None, typer.Option(min=1, help="cap on qrels training pairs (whole queries; title pairs not counted)")
    ] = None,
    dev_queries: Annotated[int | None, typer.Option(min=0, help="dev queries per data set scored before/after")] = None,
    lr: Annotated[float | None, typer.Option(min=0.0, help="learning rate (stage 2 for prorank)")] = None,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="steps between checkpoints")] = 20,
    keep_checkpoints: Annotated[bool, typer.Option(help="keep the checkpoints after a finished run")] = False,
    resume: Annotated[bool, typer.Option(help="continue from the checkpoints in --output")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    max_length: Annotated[int, typer.Option(min=16, max=512, help="cross-encoder: tokens per pair")] = 128,
    epochs: Annotated[int, typer.Option(min=1, help="cross-encoder: passes over the pairs")] = 1,
    batch_size: Annotated[int, typer.Option(min=1, help="cross-encoder: pairs per step")] = 16,
    title_queries: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="title pseudo-queries per corpus (0: none; default 600 for the cross-encoder, 0 for prorank; "
            "see the model card)",
        ),
    ] = None,
    holdout: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.9, help="cross-encoder, prorank: share of training queries held out to choose the blend"
        ),
    ] = 0.2,
    freeze_embeddings: Annotated[
        bool,
        typer.Option(
            help="cross-encoder: keep the base encoder's word embeddings (the shipped model stores only the rest)"
        ),
    ] = True,
    passage_tokens: Annotated[int, typer.Option(min=8, max=1024, help="LLM recipes: tokens kept of a passage")] = 160,
    grpo_steps: Annotated[
        int | None, typer.Option(min=0, help="LLM recipes: GRPO steps (prorank stage 1; 0 skips it)")
    ] = None,
    generations: Annotated[int, typer.Option(min=2, help="LLM recipes: GRPO completions per prompt")] = 4,
    prompts_per_step: Annotated[int, typer.Option(min=1, help="LLM recipes: GRPO prompts per step")] = 2,
    grpo_lr: Annotated[float, typer.Option(min=0.0, help="LLM recipes: GRPO learning rate")] = 5e-5,
    temperature: Annotated[float, typer.Option(min=0.0, help="LLM recipes: GRPO sampling temperature")] = 1.0,
    lora_r: Annotated[int, typer.Option(min=1, help="LLM recipes: LoRA rank")] = 16,
    stage2_epochs: Annotated[int, typer.Option(min=0, help="prorank: stage-2 passes (0 skips stage 2)")] = 1,
    stage2_loss: Annotated[str, typer.Option(help="prorank: listwise or pairwise")] = "listwise",
    stage2_groups: Annotated[int, typer.Option(min=1, help="prorank: cap on stage-2 groups")] = 300,
    distill_groups: Annotated[
        int,
        typer.Option(
            min=0,
            help="prorank: stage-2 groups with soft labels from the cross-encoder's blended scores over training "
            "queries' unjudged candidates (distillation; 0: none)",
        ),
    ] = 0,
    distill_teacher: Annotated[
        str, typer.Option(help="prorank: cross-encoder folder that scores them (default: yours, else the shipped)")
    ] = "",
    set_size: Annotated[int, typer.Option(min=2, max=10, help="rank-r1: passages per setwise prompt")] = 4,
    ndcg_reward: Annotated[bool, typer.Option(help="rank-r1: NDCG-style graded reward (GroupRank)")] = False,
    sft_steps: Annotated[
        int, typer.Option(min=0, help="rank-r1: supervised warm-up steps on replies built from the qrels (0 skips)")
    ] = 60,
    sft_lr: Annotated[float, typer.Option(min=0.0, help="rank-r1: supervised warm-up learning rate")] = 2e-4,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="do nothing when --output already holds a model")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Train a reranker on the training splits of BEIR folders (split by query; no dev query is trained on)."""
    from hopmem.memory.errors import InputError

    if recipe not in RERANKER_RECIPES:
        raise InputError(f"Unknown recipe {recipe!r}; use one of: {', '.join(RERANKER_RECIPES)}.")
    config = _settings()
    folder = output or default_model_dir(recipe, config.cache_dir)
    if if_missing and _has_model(recipe, folder):
        typer.echo(f"{recipe} already trained: {folder}")
        return
    if if_missing and recipe == "cross-encoder" and _has_model_without_blend(folder):
        typer.echo(f"{folder} holds a cross-encoder of an earlier recipe (no blend weight); training it again")
    datasets = list(dataset) if dataset else default_reranker_datasets()
    if not datasets:
        raise InputError(
            "No training data: pass --dataset DIR (a BEIR folder), or put cranfield/hotpotqa under ../shared/data."
        )
    from hopmem.finetune.blend import describe_blend
    from hopmem.finetune.dev_figures import shown
    from hopmem.memory.embeddings import load_embedder

    embedder = load_embedder(config.embedder, **config.embedder_options())
    common: dict[str, Any] = {
        "cache_dir": config.cache_dir,
        "chunk_size": config.chunk_size,
        "chunk_overlap": config.chunk_overlap,
        "progress": not quiet,
        "command": " ".join(["hopmem", *sys.argv[1:]]),
    }
    sampling: dict[str, Any] = {
        "datasets": tuple(str(d) for d in datasets),
        "output": str(folder),
        "max_positives": max_positives,
        "mine_depth": mine_depth,
        "keep_checkpoints": keep_checkpoints,
        "resume": resume,
        "seed": seed,
        "checkpoint_every": checkpoint_every,
    }
    optional = {
        "n_negatives": negatives,
        "max_train_pairs": max_train_pairs,
        "dev_queries": dev_queries,
        "own_distractors": own_distractors,
    }
    sampling |= {k: v for k, v in optional.items() if v is not None}
    if recipe == "cross-encoder":
        from hopmem.finetune.cross_encoder import CrossEncoderTrainConfig, train_cross_encoder

        ce_config = CrossEncoderTrainConfig(
            **sampling,
            base_model=base_model or "all-MiniLM-L6-v2",
            max_length=max_length,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr if lr is not None else CrossEncoderTrainConfig.lr,
            title_queries=600 if title_queries is None else title_queries,
            holdout_fraction=holdout,
            freeze_word_embeddings=freeze_embeddings,
        )
        report = train_cross_encoder(ce_config, embedder, **common)
        rows: tuple[tuple[str, Any], ...] = (
            ("untrained (fresh head)", report["dev_before"]),
            ("trained", report["dev_after"]),
        )
        summary = (
            f"{report['train_pairs']} pairs, {report['steps']} steps, {report['seconds']['total']} s; "
            f"{describe_blend(report['blend'])}"
        )
    else:
        from hopmem.finetune.grpo import GRPOSettings

        grpo = GRPOSettings(
            steps=grpo_steps if grpo_steps is not None else (40 if recipe == "prorank" else 30),
            prompts_per_step=prompts_per_step,
            num_generations=generations,
            max_completion_length=6 if recipe == "prorank" else 192,
            lr=grpo_lr,
            temperature=temperature,
            checkpoint_every=checkpoint_every,
        )
        llm_common: dict[str, Any] = {"passage_tokens": passage_tokens, "lora_r": lora_r, "lora_alpha": 2 * lora_r}
        if base_model:
            llm_common["base_model"] = base_model
        if recipe == "prorank":
            from hopmem.finetune.prorank import ProRankConfig, train_prorank

            if stage2_loss not in ("listwise", "pairwise"):
                raise InputError(f"Unknown --stage2-loss {stage2_loss!r}; use listwise or pairwise.")
            pr_config = ProRankConfig(
                **sampling,
                **llm_common,
                stage1=grpo,
                stage2_epochs=stage2_epochs,
                stage2_loss=cast(Literal["listwise", "pairwise"], stage2_loss),
                max_stage2_groups=stage2_groups,
                distill_groups=distill_groups,
                distill_teacher=distill_teacher,
                title_queries=title_queries or 0,
                stage2_lr=lr if lr is not None else ProRankConfig.stage2_lr,
                holdout_fraction=holdout,
            )
            report = train_prorank(pr_config, embedder, **common)
            rows = (
                ("base", report["dev_before"]),
                ("after stage 1", report["dev_after_stage1"]),
                ("after stage 2", report["dev_after"]),
            )
            summary = (
                f"{report['stage1'].get('steps', 0)} GRPO steps, {report['stage2'].get('steps', 0)} stage-2 steps, "
                f"{report['seconds']['total']} s; {describe_blend(report['blend'])}"
            )
        else:
            from hopmem.finetune.rank_r1 import RankR1Config, train_rank_r1
            from hopmem.finetune.sft import SFTSettings

            r1_config = RankR1Config(
                **sampling,
                **llm_common,
                grpo=grpo,
                sft=SFTSettings(steps=sft_steps, lr=sft_lr),
                set_size=set_size,
                ndcg_reward=ndcg_reward,
            )
            report = train_rank_r1(r1_config, embedder, **common)
            rows, valid = rank_r1_rows(report)
            summary = (
                f"{report['sft'].get('steps', 0)} warm-up steps, {report['grpo'].get('steps', 0)} GRPO steps, "
                f"{report['seconds']['total']} s; valid answers on dev {valid}"
            )
    if any(row.get("pairs") for _, row in rows):
        typer.echo(f"{'dev pairs':<24} {'loss':>7} {'pair acc':>9} {'MRR':>7}")
        for name, row in rows:
            cells = (shown(row["loss"], ".4f"), shown(row["pairwise_accuracy"], ".4f"), shown(row["mrr"], ".4f"))
            typer.echo(f"{name:<24} {cells[0]:>7} {cells[1]:>9} {cells[2]:>7}")
    else:
        typer.echo("dev pairs: not measured (--dev-queries 0)")
    typer.echo(f"saved to {folder} ({summary})")


@finetune_app.command("blend")
def finetune_blend(
    adapter: Annotated[Path, typer.Option(help="a trained prorank adapter folder (its record is updated)")],
    dataset: Annotated[
        list[Path], typer.Option(help="BEIR folder whose training-split queries the adapter never saw (repeatable)")
    ],
    queries: Annotated[int, typer.Option(min=1, help="held-out queries per data set (seeded sample)")] = 20,
    depth: Annotated[int, typer.Option(min=1, help="hybrid candidates per query")] = 30,
    seed: Annotated[int, typer.Option()] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Choose the blend weight of an already trained pointwise adapter on training queries it never saw, and save it."""
    from hopmem.finetune.blend import choose_adapter_blend
    from hopmem.memory.embeddings import load_embedder

    config = _settings()
    embedder = load_embedder(config.embedder, **config.embedder_options())
    blend = choose_adapter_blend(
        adapter,
        list(dataset),
        embedder,
        cache_dir=config.cache_dir,
        chunk_size=config.chunk_size,
        chunk_overlap=config.chunk_overlap,
        per_dataset=queries,
        depth=depth,
        seed=seed,
        progress=not quiet,
        command=" ".join(["hopmem", *sys.argv[1:]]),
    )
    typer.echo(f"blend weight {blend['weight']} (chosen on {blend['chosen_on']}; nDCG@10 per w {blend['ndcg@10']})")


def default_model_dir(recipe: str, cache_dir: Path) -> Path:
    """Where ``recipe`` saves by default, which is where the agent's reranker of that name looks first."""
    from hopmem.agents.rerank.model_paths import default_cross_encoder_dir, default_llm_reranker_dir

    if recipe == "cross-encoder":
        return default_cross_encoder_dir(cache_dir)
    return default_llm_reranker_dir(recipe, cache_dir)


def _has_model(recipe: str, folder: Path) -> bool:
    """A trained model of ``recipe`` in ``folder``; a cross-encoder counts only with its blend weight (the earlier
    recipe trained without title pairs or blend and ranked far worse, so ``--if-missing`` replaces it)."""
    from hopmem.agents.rerank.cross_encoder import BLEND_FILE
    from hopmem.agents.rerank.model_paths import is_adapter_dir, is_cross_encoder_dir

    if recipe == "cross-encoder":
        return is_cross_encoder_dir(folder) and (folder / BLEND_FILE).is_file()
    return is_adapter_dir(folder)


def _has_model_without_blend(folder: Path) -> bool:
    from hopmem.agents.rerank.cross_encoder import BLEND_FILE
    from hopmem.agents.rerank.model_paths import is_cross_encoder_dir

    return is_cross_encoder_dir(folder) and not (folder / BLEND_FILE).is_file()


def eval_rerank(
    dataset: Annotated[Path, typer.Option(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")],
    split: Annotated[str, typer.Option(help="qrels split, or train/dev derived from a single split")] = "dev",
    reranker: Annotated[
        list[str] | None,
        typer.Option(
            help="none, cross-encoder, cross-encoder-alone (without its blend), cross-encoder-untrained, prorank, "
            "prorank-base, prorank-alone (without its blend) or rank-r1; repeat to compare (first = headline)"
        ),
    ] = None,
    candidates: Annotated[str, typer.Option(help="retrieval giving the candidates: bm25, dense or hybrid")] = "hybrid",
    depth: Annotated[int, typer.Option(min=1, max=1000, help="candidates reranked per query")] = 30,
    baselines: Annotated[bool, typer.Option(help="add bm25/dense/hybrid own order as rows")] = False,
    model: Annotated[Path | None, typer.Option(help="cross-encoder folder (default HOPMEM_RERANKER_MODEL)")] = None,
    adapter: Annotated[
        Path | None, typer.Option(help="prorank LoRA adapter (default: yours in the cache, else the shipped one)")
    ] = None,
    rank_r1_adapter: Annotated[Path | None, typer.Option(help="rank-r1 LoRA adapter (found like --adapter)")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report here (+ .queries.jsonl)")] = None,
    plot: Annotated[Path | None, typer.Option(help="write a PNG of the metrics and latencies here")] = None,
    max_queries: Annotated[int | None, typer.Option(min=1, help="only the first N queries")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Rerank the top --depth candidates of each query and report nDCG@10, recall@10, MRR@10 and latency per query.

    `--reranker none` gives the candidates' own order; several --reranker values are compared on the same candidates
    and queries. Queries a trained reranker (cross-encoder or adapter) was trained on are skipped.
    """
    from hopmem.app.common import echo_json
    from hopmem.eval.rerank import evaluate_rerank

    report = evaluate_rerank(
        dataset,
        split,
        reranker or ["cross-encoder"],
        candidates=candidates,
        depth=depth,
        baselines=baselines,
        settings=_settings(),
        model_dir=model,
        adapter=adapter,
        rank_r1_adapter=rank_r1_adapter,
        json_out=json_out,
        plot_out=plot,
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


def rank_r1_rows(report: dict[str, Any]) -> tuple[tuple[tuple[str, dict[str, Any]], ...], str]:
    """The dev table's rows of a rank-r1 run (base, after the warm-up when measured, trained, then the mean of random
    orders over the same pairs: the level a model without skill reaches) and its valid-answer rates, in order."""
    rows: tuple[tuple[str, dict[str, Any]], ...] = (("base", report["dev_before"]), ("trained", report["dev_after"]))
    if report.get("dev_after_sft"):
        rows = (rows[0], ("after the warm-up", report["dev_after_sft"]), rows[1])
    valid = " -> ".join(f"{row.get('valid_answer_rate')}" for _, row in rows)
    if (report.get("dev_chance") or {}).get("draws"):
        rows = (*rows, ("a random order (mean)", {"loss": None, **report["dev_chance"]}))
    return rows, valid


# The decomposer's command lives in its own module (this one holds the reranker and TreeHop commands).
finetune_app.command("decomposer")(finetune_decomposer)
