"""The ``decomposer`` recipe: the planner's small model trained with GRPO to decide when and how to split a question.

ACQO's point is that a small model *trained* with reinforcement learning decides when and how to split better than
the same model prompted. Here the model is the planner's (SmolLM2-135M-Instruct, float32 on a CPU), the prompt is
the tuned planner's short few-shot prompt (:func:`hopmem.agents.prompts.decompose_messages`) ending with the
forced ``{"`` that inference gives it, and only a LoRA adapter on the attention projections is trained (TRL's
``GRPOTrainer`` through :func:`hopmem.finetune.grpo.run_grpo`). Each rollout is a plan; its reward
(:mod:`hopmem.finetune.decomposer_reward`) runs the plan through the agent's own retrieve, TreeHop, fuse and
cross-encoder rerank steps (:mod:`hopmem.finetune.decomposer_pipeline`, the default ``pipeline="agent"``; or only its
RSF-fused hybrid searches, ``pipeline="fused"``) and scores the documents found against the supporting passages
(recall@10 or nDCG@10), minus a cost per extra search, plus a format term; an invalid plan earns the format penalty
only.

Warm-up (:mod:`hopmem.finetune.decomposer_warmup`, expert iteration): before GRPO, each training question's
candidate plans (whole, the rules' plan, the chain ``[q, "{1} q"]``, optionally plans sampled from the base model)
are scored with the same reward, and the adapter is first trained with supervision to write the best one (most
evidence; ties to the kind of plan that pays on average for questions of the same rules class), so
that GRPO starts from a policy that writes valid plans and now and then a chain or a split (which the base model
almost never did, leaving GRPO no signal toward them).

Curriculum (ACQO's two stages, :mod:`hopmem.finetune.decomposer_data`): stage 1 trains on questions whose whole-
question search already finds every supporting passage and on easy bridge questions, stage 2 adds the hard ones;
membership is measured with the whole question's own search, not hand-labelled. A seeded share of the questions is
held out; after the warm-up and each stage the adapter plans every held-out question greedily (as the agent would)
and the one whose plans retrieve most (invalid plans replaced by the rules' plan, which is what the agent does with
them; on equal recall the higher mean reward) is the adapter kept. The untrained base model (same prompt) and the
rules are measured on the same held-out questions for the card.

Files written to ``output``: the adapter, ``hopmem_planner.json`` (base model; what inference reads), ``metrics.json``
(the report: per-step GRPO log, held-out results), ``data.json`` (training, held-out ids and measured stages),
``README.md`` (the card) and ``reward_curve.png``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hopmem.agents.config import AgentConfig
from hopmem.agents.planner import rule_plan
from hopmem.agents.tuned_planner import DEFAULT_BASE_MODEL, RECORD_FILE
from hopmem.finetune.decomposer_data import (
    DecomposerData,
    DecomposerQuestion,
    assign_stages,
    curriculum,
    read_questions,
    reserved_ids,
    split_holdout,
)
from hopmem.finetune.decomposer_pipeline import AgentPipeline, PipelineSettings
from hopmem.finetune.decomposer_reward import (
    PlanEnvironment,
    PlanLog,
    RewardWeights,
    plan_prompt,
    plan_reward_func,
)
from hopmem.finetune.decomposer_warmup import (
    WarmupSettings,
    expected_rewards,
    run_warmup,
    sample_plans,
    target_summary,
    warmup_targets,
)
from hopmem.finetune.grpo import GRPOSettings, grpo_log, lora_config, run_grpo
from hopmem.finetune.recipe import Recipe, TrainContext
from hopmem.finetune.reranker_data import portable_adapter_config
from hopmem.memory.datasets.beir import folder_hash
from hopmem.memory.datasets.metrics import recall_at_k
from hopmem.memory.errors import InputError
from hopmem.memory.model_paths import display_path

if TYPE_CHECKING:
    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")


def _stage(steps: int) -> GRPOSettings:
    """A curriculum stage as the shipped adapter's run trained it (run eight, docs/decomposer.md)."""
    return GRPOSettings(
        steps=steps,
        prompts_per_step=2,
        num_generations=4,
        max_completion_length=128,
        lr=3e-4,
        temperature=0.8,
        checkpoint_every=25,
        scale_rewards="none",
    )


@dataclass
class DecomposerConfig:
    """Settings of one ``decomposer`` run (saved in ``metrics.json`` and the card).

    Args:
        datasets: BEIR folders with supporting passages (``metadata.supporting`` or qrels).
        output: the adapter's folder.
        splits: qrels splits whose questions are used (each folder's that exist).
        base_model: the planner's model (packaged alias, GGUF file or checkpoint folder).
        holdout: questions held out to choose the checkpoint (never trained on).
        reserve: ``NAME=N`` entries: the first N judged questions of the folder NAME are kept out of training and
            of the held-out set, for evaluation (:func:`hopmem.finetune.decomposer_data.reserved_ids`).
        max_train: most training questions (0: all the rest).
        lora_r, lora_alpha, lora_dropout, lora_targets: the LoRA adapter (small: attention projections).
        warmup: the supervised warm-up on reward-best enumerated plans (``steps = 0`` skips it).
        stage1, stage2: the GRPO settings of the curriculum's stages (``steps = 0`` skips one).
        reward: the reward's terms.
        pipeline: where a plan is scored: ``fused`` (the fused lists' first documents) or ``agent`` (the agent's
            retrieve, hop, fuse and rerank steps, :mod:`hopmem.finetune.decomposer_pipeline`).
        pipeline_settings, agent: the agent pipeline's settings (``hopmem.Settings``' values in the CLI).
        deep_k: the deeper cut that tells easy bridge questions from hard ones.
        max_subqueries: most sub-queries a plan may have (the agent's ``max_subqueries``).
        plan_tokens: tokens of a held-out plan (the agent's planning budget).
        keep_checkpoints: keep ``checkpoints/`` after the run.
        resume: continue from the checkpoints in ``output``.
        seed: seeds the split, data order, sampling and LoRA initialisation.
    """

    datasets: tuple[str, ...]
    output: str
    splits: tuple[str, ...] = ("train",)
    base_model: str = DEFAULT_BASE_MODEL
    holdout: int = 100
    reserve: tuple[str, ...] = ()
    max_train: int = 0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = ATTENTION
    warmup: WarmupSettings = field(default_factory=lambda: WarmupSettings(steps=96, samples=0, sample_tokens=128))
    stage1: GRPOSettings = field(default_factory=lambda: _stage(8))
    stage2: GRPOSettings = field(default_factory=lambda: _stage(8))
    reward: RewardWeights = field(default_factory=lambda: RewardWeights(search_cost=0.005))
    pipeline: Literal["fused", "agent"] = "agent"
    pipeline_settings: PipelineSettings = field(default_factory=PipelineSettings)
    agent: AgentConfig = field(default_factory=AgentConfig)
    deep_k: int = 30
    max_subqueries: int = 3
    plan_tokens: int = 160
    keep_checkpoints: bool = False
    resume: bool = False
    seed: int = 0


def prompt_rows(questions: list[DecomposerQuestion], tokenizer: Any, max_subqueries: int) -> list[dict[str, Any]]:
    """GRPO rows: the prompt and the reward's columns (question, its folder, its supporting ids)."""
    return [
        {
            "prompt": plan_prompt(tokenizer, q.text, max_subqueries),
            "question": q.text,
            "dataset": q.dataset,
            "supporting": list(q.supporting),
        }
        for q in questions
    ]


def greedy_plans(
    model: Any, tokenizer: Any, questions: list[DecomposerQuestion], config: DecomposerConfig
) -> list[str]:
    """Each question's plan completion, greedy, in batches (left padding), as the agent would generate it."""
    import torch

    tokenizer.padding_side = "left"
    out: list[str] = []
    model.eval()
    for start in range(0, len(questions), 8):
        batch = [plan_prompt(tokenizer, q.text, config.max_subqueries) for q in questions[start : start + 8]]
        encoded = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            generated = model.generate(
                **encoded, max_new_tokens=config.plan_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        width = encoded["input_ids"].shape[1]
        out += [tokenizer.decode(row[width:], skip_special_tokens=True) for row in generated]
    return out


def holdout_metrics(
    env: PlanEnvironment, questions: list[DecomposerQuestion], completions: list[str]
) -> dict[str, Any]:
    """Held-out results of one set of plans: valid share, mean reward, recall@10 of the plans as the agent would run
    them (an invalid plan replaced by the rules' plan), searches per question and plan modes."""
    rewards, recalls, searches, valid = [], [], [], 0
    modes: dict[str, int] = {}
    for q, completion in zip(questions, completions, strict=True):
        score = env.score(completion, q.text, q.dataset, q.supporting)
        rewards.append(score.reward)
        if score.valid:
            valid += 1
            recalls.append(score.recall)
            searches.append(score.searches)
            modes[score.mode] = modes.get(score.mode, 0) + 1
        else:
            recall, n = _rules_recall(env, q, env.weights.max_subqueries)
            recalls.append(recall)
            searches.append(n)
            modes["fallback"] = modes.get("fallback", 0) + 1
    n = max(1, len(questions))
    return {
        "questions": len(questions),
        "valid": round(valid / n, 4),
        "mean_reward": round(sum(rewards) / n, 4),
        "recall@10": round(sum(recalls) / n, 4),
        "searches": round(sum(searches) / n, 3),
        "modes": dict(sorted(modes.items())),
    }


def _rules_recall(env: PlanEnvironment, q: DecomposerQuestion, max_subqueries: int) -> tuple[float, int]:
    mode, queries = rule_plan(q.text, max_subqueries=max_subqueries)
    ranked, searches = env.rank(q.dataset, q.text, mode, queries)
    return recall_at_k(ranked, dict.fromkeys(q.supporting, 1), 10), searches


def baseline_metrics(env: PlanEnvironment, questions: list[DecomposerQuestion], max_subqueries: int) -> dict[str, Any]:
    """Held-out recall@10 of the rules' plans and of the whole question alone (no split)."""
    rules = [_rules_recall(env, q, max_subqueries) for q in questions]
    qrels = [dict.fromkeys(q.supporting, 1) for q in questions]
    whole = [
        recall_at_k(env.rank(q.dataset, q.text, "whole", [q.text])[0], r, 10)
        for q, r in zip(questions, qrels, strict=True)
    ]
    n = max(1, len(questions))
    return {
        "rules": {
            "recall@10": round(sum(r for r, _ in rules) / n, 4),
            "searches": round(sum(s for _, s in rules) / n, 3),
        },
        "whole": {"recall@10": round(sum(whole) / n, 4), "searches": 1.0},
    }


def train_decomposer(
    config: DecomposerConfig,
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the curriculum and save the chosen adapter with its card, report and reward curve.

    Args:
        config: the run's settings.
        embedder: the memory's embedder (the reward's hybrid search).
        cache_dir: where indexed corpora are cached.
        chunk_size, chunk_overlap: chunking of the indexed corpora.
        progress: progress bars.
        command: the command line, for the card.

    Returns:
        The training report (also ``metrics.json``).

    Raises:
        InputError: on no data set, or data that yields no training question.
    """
    context = TrainContext(embedder, cache_dir, chunk_size, chunk_overlap, progress, command)
    return DecomposerRecipe(config, context).run()


class DecomposerRecipe(Recipe[DecomposerConfig, DecomposerData]):
    """Two GRPO stages on one LoRA adapter; the held-out questions pick the stage that is kept."""

    name = "decomposer"

    def __init__(self, config: DecomposerConfig, context: TrainContext) -> None:
        super().__init__(config, context)
        pipeline = None
        if config.pipeline == "agent":
            pipeline = AgentPipeline(
                context.embedder, cache_dir=context.cache_dir, settings=config.pipeline_settings, config=config.agent
            )
        self.env = PlanEnvironment(
            context.embedder,
            cache_dir=context.cache_dir,
            chunk_size=context.chunk_size,
            chunk_overlap=context.chunk_overlap,
            weights=config.reward,
            deep_k=config.deep_k,
            progress=context.progress,
            pipeline=pipeline,
        )

    def check(self) -> None:
        if not self.config.datasets:
            raise InputError("Give at least one BEIR folder with supporting passages to train on (--dataset).")
        c = self.config
        if c.stage1.steps <= 0 and c.stage2.steps <= 0 and c.warmup.steps <= 0:
            raise InputError(
                "The warm-up and both curriculum stages have 0 steps; give --warmup-steps or --stage1-steps."
            )

    def load_data(self) -> DecomposerData:
        c = self.config
        questions = read_questions(c.datasets, c.splits)
        reserved = reserved_ids(c.datasets, c.splits, c.reserve)
        data = split_holdout(questions, holdout=c.holdout, max_train=c.max_train, seed=c.seed, reserved=reserved)
        assign_stages(data.train, lambda q: self.env.whole_recall(q.dataset, q.text, q.supporting))
        data.rule.update(
            {
                "stage_rule": f"whole-question recall@{c.reward.k} = 1: single; recall@{c.deep_k} = 1: easy; else hard",
                "stages": data.stage_counts(),
            }
        )
        return data

    def fit(self, data: DecomposerData) -> dict[str, Any]:
        import torch

        from hopmem.agents.llm.transformers_llm import TransformersLLM

        c = self.config
        torch.manual_seed(c.seed)
        llm = TransformersLLM(c.base_model, repeat_penalty=1.0)
        model, tokenizer = llm.model, llm.tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        seconds: dict[str, float] = {"data": round(self.data_seconds, 1)}
        t0 = time.perf_counter()
        holdout = {"prompted": holdout_metrics(self.env, data.holdout, greedy_plans(model, tokenizer, data.holdout, c))}
        baselines = baseline_metrics(self.env, data.holdout, c.max_subqueries)
        seconds["holdout_base"] = round(time.perf_counter() - t0, 1)
        stages: dict[str, Any] = {}
        peft_config = lora_config(c.lora_r, c.lora_alpha, c.lora_dropout, c.lora_targets)
        best: tuple[float, float, str] | None = None
        if c.warmup.steps > 0:
            model, stages["warmup"], seconds["warmup"] = self._warmup(model, tokenizer, data, peft_config)
            t0 = time.perf_counter()
            holdout["warmup"] = holdout_metrics(self.env, data.holdout, greedy_plans(model, tokenizer, data.holdout, c))
            seconds["holdout_warmup"] = round(time.perf_counter() - t0, 1)
            model.save_pretrained(str(self.checkpoints / "warmup-adapter"))
            best = (holdout["warmup"]["recall@10"], holdout["warmup"]["mean_reward"], "warmup")
        for number, settings in ((1, c.stage1), (2, c.stage2)):
            name = f"stage{number}"
            if settings.steps <= 0:
                continue
            questions = curriculum(data.train, number, c.seed)
            plan_log = PlanLog(settings.num_generations)
            t0 = time.perf_counter()
            model, history = run_grpo(
                model,
                tokenizer,
                prompt_rows(questions, tokenizer, c.max_subqueries),
                [plan_reward_func(self.env, plan_log)],
                settings=settings,
                output_dir=self.checkpoints / name,
                peft_config=peft_config if not hasattr(model, "peft_config") else None,
                seed=c.seed + number,
                resume=c.resume,
                progress=self.context.progress,
            )
            seconds[name] = round(time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            held = holdout_metrics(self.env, data.holdout, greedy_plans(model, tokenizer, data.holdout, c))
            seconds[f"holdout_{name}"] = round(time.perf_counter() - t0, 1)
            holdout[name] = held
            stages[name] = {
                "steps": settings.steps,
                "questions": len(questions),
                "settings": asdict(settings),
                "rewards": plan_log.summary(),
                "log": grpo_log(history),
            }
            model.save_pretrained(str(self.checkpoints / f"{name}-adapter"))
            if best is None or (held["recall@10"], held["mean_reward"]) > best[:2]:
                best = (held["recall@10"], held["mean_reward"], name)  # equal recall: the higher reward
        assert best is not None  # check() refuses a run with no stage and no warm-up
        chosen = best[2]
        self.out.mkdir(parents=True, exist_ok=True)
        for item in (self.checkpoints / f"{chosen}-adapter").iterdir():
            shutil.copy2(item, self.out / item.name)
        seconds["total"] = round(self.elapsed(), 1)
        return {
            "recipe": self.name,
            "config": {**asdict(c), "datasets": [display_path(d) for d in c.datasets]},
            "base_model": {"name": c.base_model, "loaded_as": llm.name},
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "data": data.rule,
            **stages,
            "holdout": {**holdout, **baselines},
            "chosen": chosen,
            "seconds": seconds,
        }

    def _warmup(self, model: Any, tokenizer: Any, data: DecomposerData, peft_config: Any) -> tuple[Any, dict, float]:
        """Enumerate and score each training question's candidate plans, then train the fresh LoRA adapter on the
        reward-best ones (:mod:`hopmem.finetune.decomposer_warmup`). Returns the adapted model, the report's
        ``warmup`` entry and the seconds it took."""
        from peft import get_peft_model

        c = self.config
        t0 = time.perf_counter()
        sampled = sample_plans(model, tokenizer, data.train, c.warmup, c.max_subqueries)
        targets = warmup_targets(self.env, data.train, sampled, c.max_subqueries, ties=c.warmup.ties)
        summary = target_summary(targets)
        summary["expected_rewards"] = expected_rewards(data.train, [t.candidates for t in targets], c.max_subqueries)
        log.info("warm-up targets: %s", summary)
        target_seconds = round(time.perf_counter() - t0, 1)
        model = get_peft_model(model, peft_config)
        trained = run_warmup(
            model,
            tokenizer,
            targets,
            c.warmup,
            max_subqueries=c.max_subqueries,
            seed=c.seed,
            progress=self.context.progress,
        )
        entry = {
            "settings": asdict(c.warmup),
            "targets": summary,
            "target_seconds": target_seconds,
            **{k: v for k, v in trained.items() if k != "loss_history"},
            "log": [{"step": n + 1, "loss": v} for n, v in enumerate(trained["loss_history"])],
        }
        return model, entry, round(time.perf_counter() - t0, 1)

    def write(self, report: dict[str, Any], data: DecomposerData) -> None:
        from hopmem.finetune.decomposer_card import model_card, save_reward_curve

        out = self.out
        record = {"recipe": self.name, "base_model": self.config.base_model, "prompt": "decompose_messages + '{\"'"}
        (out / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        portable_adapter_config(out, self.config.base_model)
        (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (out / "data.json").write_text(json.dumps(data.to_dict(), indent=1) + "\n", encoding="utf-8")
        (out / "README.md").write_text(model_card(report), encoding="utf-8")
        save_reward_curve(out)
        self.env.close()

    def inputs(self, data: DecomposerData) -> dict[str, Any]:
        return {
            "data": {Path(d).name: folder_hash(Path(d)) for d in self.config.datasets},
            "model": {"base_model": self.config.base_model, "embedder": self.context.embedder.name},
        }
