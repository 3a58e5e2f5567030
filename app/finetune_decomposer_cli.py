"""``hopmem finetune decomposer``: train the query planner (SmolLM2 + LoRA) with GRPO (docs/decomposer.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from hopmem.app.common import settings as _settings


def finetune_decomposer(
    dataset: Annotated[
        list[Path] | None,
        typer.Option(
            help="BEIR folder whose questions have 2+ supporting passages (repeat for several); default "
            "../shared/data/hotpotqa and hotpotqa-extra"
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(help="adapter folder (default: HOPMEM_CACHE_DIR/planner/decomposer, where the agent looks first)"),
    ] = None,
    splits: Annotated[str, typer.Option(help="comma-separated qrels splits whose questions train")] = "train",
    holdout: Annotated[int, typer.Option(min=1, help="questions held out to choose the stage kept")] = 100,
    reserve: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=N: keep the first N judged questions of the folder NAME out of training (the ones "
            "`hopmem eval qa --max-queries N` runs); repeat for several"
        ),
    ] = None,
    warmup_steps: Annotated[
        int, typer.Option(min=0, help="supervised steps on each question's reward-best enumerated plan (0: none)")
    ] = 96,
    warmup_batch: Annotated[int, typer.Option(min=1, help="examples per warm-up step")] = 4,
    warmup_lr: Annotated[float, typer.Option(min=0.0, help="learning rate of the warm-up")] = 3e-4,
    warmup_samples: Annotated[
        int, typer.Option(min=0, help="plans sampled from the base model per question as extra candidates")
    ] = 0,
    warmup_split_share: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.9, help="repeat non-whole targets until they are this share of the warm-up's examples"
        ),
    ] = 0.0,
    warmup_ties: Annotated[
        Literal["expected", "fewer"],
        typer.Option(
            help="plans finding the same evidence: the kind with the best mean reward for questions of the same rules "
            "class wins (expected), or fewer searches (fewer)"
        ),
    ] = "expected",
    max_train: Annotated[int, typer.Option(min=0, help="most training questions (0: all)")] = 0,
    stage1_steps: Annotated[int, typer.Option(min=0, help="GRPO steps on single-search and easy bridge questions")] = 8,
    stage2_steps: Annotated[int, typer.Option(min=0, help="GRPO steps on all questions (adds the hard ones)")] = 8,
    prompts_per_step: Annotated[int, typer.Option(min=1)] = 2,
    generations: Annotated[int, typer.Option(min=2, help="rollouts per question (GRPO's group)")] = 4,
    completion_tokens: Annotated[int, typer.Option(min=8, help="most tokens of a rollout")] = 128,
    lr: Annotated[float, typer.Option(min=0.0, help="learning rate of the LoRA weights")] = 3e-4,
    temperature: Annotated[float, typer.Option(min=0.01, help="sampling temperature of the rollouts")] = 0.8,
    scale_rewards: Annotated[
        Literal["group", "batch", "none"],
        typer.Option(help="GRPO advantages divided by the group's (or batch's) reward deviation, or not (none)"),
    ] = "none",
    lora_r: Annotated[int, typer.Option(min=1, max=16, help="LoRA rank (alpha = 2r), attention projections")] = 8,
    metric: Annotated[
        Literal["recall@10", "ndcg@10"], typer.Option(help="what the fused list is scored by")
    ] = "recall@10",
    search_cost: Annotated[float, typer.Option(min=0.0, help="reward lost per search beyond the first")] = 0.005,
    reward_pipeline: Annotated[
        Literal["fused", "agent"],
        typer.Option(
            help="score a plan by the fused lists' first documents (fused) or by the agent's own retrieve, TreeHop, "
            "fuse and cross-encoder rerank steps, as `hopmem eval qa` does (agent; slower per new plan)"
        ),
    ] = "agent",
    threads: Annotated[int, typer.Option(min=0, help="torch threads (0: torch's default)")] = 1,
    seed: Annotated[int, typer.Option()] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the checkpoints in --output")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Train the query decomposer (the planner's SmolLM2 + LoRA) with GRPO; the reward is the evidence its plan's
    searches find (recall@10 of the RSF-fused hybrid lists, or of the agent's reranked list with --reward-pipeline
    agent) minus a cost per search, with a format term."""
    from hopmem.agents.config import AgentConfig
    from hopmem.agents.tuned_planner import default_decomposer_dir
    from hopmem.finetune.decomposer import DecomposerConfig, train_decomposer
    from hopmem.finetune.decomposer_pipeline import PipelineSettings
    from hopmem.finetune.decomposer_reward import RewardWeights
    from hopmem.finetune.decomposer_warmup import WarmupSettings
    from hopmem.finetune.grpo import GRPOSettings
    from hopmem.memory.embeddings import load_embedder

    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    config = _settings()
    folders = [str(d) for d in dataset] if dataset else [str(d) for d in default_decomposer_datasets()]
    if not folders:
        raise typer.BadParameter("no --dataset given and no ../shared/data/hotpotqa folder found")

    def stage(steps: int) -> GRPOSettings:
        return GRPOSettings(
            steps=steps,
            prompts_per_step=prompts_per_step,
            num_generations=generations,
            max_completion_length=completion_tokens,
            lr=lr,
            temperature=temperature,
            checkpoint_every=25,
            scale_rewards=scale_rewards,
        )

    train_config = DecomposerConfig(
        datasets=tuple(folders),
        output=str(output or default_decomposer_dir(config.cache_dir)),
        splits=tuple(s.strip() for s in splits.split(",") if s.strip()),
        holdout=holdout,
        reserve=tuple(reserve or ()),
        max_train=max_train,
        lora_r=lora_r,
        lora_alpha=2 * lora_r,
        warmup=WarmupSettings(
            steps=warmup_steps,
            batch_size=warmup_batch,
            lr=warmup_lr,
            samples=warmup_samples,
            split_share=warmup_split_share,
            ties=warmup_ties,
            sample_tokens=completion_tokens,
        ),
        stage1=stage(stage1_steps),
        stage2=stage(stage2_steps),
        reward=RewardWeights(metric=metric, search_cost=search_cost, max_subqueries=config.max_subqueries),
        pipeline=reward_pipeline,
        pipeline_settings=PipelineSettings.from_settings(config),
        agent=AgentConfig.from_settings(config),
        max_subqueries=config.max_subqueries,
        resume=resume,
        seed=seed,
    )
    embedder = load_embedder(config.embedder, **config.embedder_options())
    report = train_decomposer(
        train_config,
        embedder,
        cache_dir=config.cache_dir,
        chunk_size=config.chunk_size,
        chunk_overlap=config.chunk_overlap,
        progress=not quiet,
        command=" ".join(["hopmem", *sys.argv[1:]]),
    )
    typer.echo(f"{'held out':<28} {'recall@10':>9} {'searches':>9} {'valid':>6}")
    for name, row in report["holdout"].items():
        typer.echo(f"{name:<28} {row['recall@10']:>9.4f} {row['searches']:>9.3f} {row.get('valid', 1.0):>6.3f}")
    typer.echo(f"saved to {train_config.output} (kept {report['chosen']}, {report['seconds']['total']} s)")


def default_decomposer_datasets() -> list[Path]:
    """The shared hotpotqa and hotpotqa-extra folders that exist (training questions with supporting passages)."""
    from hopmem.finetune.cross_encoder import default_training_datasets

    return [d for d in default_training_datasets() if Path(d).name.startswith("hotpotqa")]
