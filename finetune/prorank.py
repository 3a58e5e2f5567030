"""The ``prorank`` recipe: a pointwise LLM reranker tuned with LoRA in two stages (ProRank, arXiv 2506.03487).

Stage 1, GRPO prompt warm-up: the model reads the fixed relevance prompt of
:func:`hopmem.agents.rerank.prompts.pointwise_messages` and answers ``0`` or ``1``; TRL's ``GRPOTrainer`` samples
several answers per prompt and rewards the correct label plus a format term (:func:`hopmem.finetune.rewards.
pointwise_reward`), so a small model learns to answer in the format the scorer reads. Stage 2, fine-grained score
learning: the score ``logit("1") - logit("0")`` at the answer position (no added layer) is trained with a listwise
(softmax cross-entropy against the graded labels) or pairwise (RankNet) loss over groups of one positive and mined
hard negatives of the same query. Only the LoRA weights change; the adapter is saved with a model card.

Training data comes from the training split of each BEIR folder (:mod:`hopmem.finetune.reranker_data`): qrels
positives with their grades, negatives mined with the memory's hybrid search, split by query with no leakage. The
training query ids are saved in ``data.json`` so evaluations skip them.

Progress: TRL's bar in stage 1, a tqdm bar in stage 2. Checkpoints: stage 1 through TRL (``checkpoints/stage1``),
the finished stage-1 adapter (``checkpoints/stage1-adapter``), stage 2 every ``checkpoint_every`` steps
(``checkpoints/stage2.pt``); a run started again with ``resume`` picks up where the last one stopped.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hopmem.agents.rerank.pointwise import (
    DEFAULT_BASE_MODEL,
    DEFAULT_PASSAGE_TOKENS,
    DEFAULT_QUERY_TOKENS,
    PointwiseLLMReranker,
    encode_pointwise,
    label_token_ids,
    relevance_logits,
)
from hopmem.agents.rerank.prompts import clip_tokens, pointwise_messages
from hopmem.finetune.blend import BLEND_GRID, choose_blend
from hopmem.finetune.dev_figures import dev_metrics
from hopmem.finetune.distill import distill_groups
from hopmem.finetune.grpo import LORA_TARGETS, GRPOSettings, grpo_log, lora_config, run_grpo
from hopmem.finetune.recipe import RerankerRecipe, TrainContext, load_checkpoint, save_checkpoint
from hopmem.finetune.reranker_data import RerankPair, TrainingData
from hopmem.finetune.rewards import RewardLog, pointwise_reward_func
from hopmem.finetune.schedule import linear_schedule
from hopmem.memory.errors import InputError

if TYPE_CHECKING:
    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)


@dataclass
class ProRankConfig:
    """Settings of one ``prorank`` run (saved in ``metrics.json`` and the model card).

    Args:
        datasets: BEIR folders whose training splits are used.
        output: the adapter's folder.
        base_model: the causal LM the adapter is trained on (packaged alias, GGUF file or checkpoint folder).
        passage_tokens, query_tokens: token budgets of a prompt (inference reads them from the adapter's record).
        lora_r, lora_alpha, lora_dropout, lora_targets: the LoRA adapter.
        max_positives, n_negatives, mine_depth, max_train_pairs, dev_queries, own_distractors: pair sampling
            (:class:`hopmem.finetune.reranker_data.PairSampling`); the cap is high enough that every judged training
            query of the shared data sets is used, and distractor-setting folders (HotpotQA) add each question's own
            distractor paragraphs as negatives.
        title_queries: title pseudo-queries per corpus added to stage 2 (0: none; they made the cross-encoder learn
            but did not help SmolLM2 here, see docs/finetune.md).
        holdout_fraction: share of each training split kept out of training; the weight of the blend with the
            candidates' order is chosen on those queries' hybrid candidates (:mod:`hopmem.finetune.blend`) and saved
            in ``hopmem_reranker.json`` (0: nothing held out, the model alone).
        blend_grid: blend weights tried on the held-out queries.
        stage1: GRPO prompt warm-up settings; ``stage1.steps = 0`` skips the stage.
        stage2_epochs: passes over the stage-2 groups (0 skips the stage).
        stage2_negatives: negatives in each stage-2 group (with one positive).
        stage2_loss: ``listwise`` (softmax cross-entropy against the normalised labels) or ``pairwise`` (RankNet).
        stage2_lr: learning rate of stage 2 (AdamW, linear warm-up then decay).
        max_stage2_groups: cap on stage-2 groups (a seeded sample beyond it).
        distill_groups: stage-2 groups with soft labels added to the labelled ones: the cross-encoder's blended
            scores over training queries' hybrid candidates, judged or not (:mod:`hopmem.finetune.distill`; 0: none).
        distill_teacher: the cross-encoder folder that scores them ("": the user's trained one, else the shipped one).
        distill_temperature: temperature of the soft targets ``softmax(teacher / temperature)``.
        checkpoint_every: stage-2 steps between checkpoints.
        keep_checkpoints: keep ``checkpoints/`` after a finished run.
        resume: continue from the checkpoints in ``output``.
        seed: seeds sampling, data order and LoRA initialisation.
    """

    datasets: tuple[str, ...]
    output: str
    base_model: str = DEFAULT_BASE_MODEL
    passage_tokens: int = DEFAULT_PASSAGE_TOKENS
    query_tokens: int = DEFAULT_QUERY_TOKENS
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_TARGETS
    max_positives: int = 3
    n_negatives: int = 4
    mine_depth: int = 30
    max_train_pairs: int = 20000
    own_distractors: int = 3
    dev_queries: int = 10
    title_queries: int = 0
    holdout_fraction: float = 0.2
    blend_grid: tuple[float, ...] = BLEND_GRID
    stage1: GRPOSettings = field(default_factory=GRPOSettings)
    stage2_epochs: int = 1
    stage2_negatives: int = 3
    stage2_loss: Literal["listwise", "pairwise"] = "listwise"
    stage2_lr: float = 1e-4
    max_stage2_groups: int = 300
    distill_groups: int = 0
    distill_teacher: str = ""
    distill_temperature: float = 1.0
    checkpoint_every: int = 25
    keep_checkpoints: bool = False
    resume: bool = False
    seed: int = 0


@dataclass(frozen=True)
class ScoreGroup:
    """One stage-2 example: a query, passages (a positive first) and their labels."""

    query: str
    texts: tuple[str, ...]
    labels: tuple[float, ...]


def stage1_rows(pairs: list[RerankPair], tokenizer: Any, config: ProRankConfig) -> list[dict[str, Any]]:
    """GRPO prompts: one per pair, positives and negatives interleaved so every step sees both labels."""
    rng = random.Random(config.seed)
    pos = [p for p in pairs if p.label > 0]
    neg = [p for p in pairs if p.label <= 0]
    rng.shuffle(pos)
    rng.shuffle(neg)
    ordered: list[RerankPair] = []
    for i in range(max(len(pos), len(neg))):
        ordered += [p for p in (pos[i] if i < len(pos) else None, neg[i] if i < len(neg) else None) if p]
    return [
        {
            "prompt": pointwise_messages(
                clip_tokens(tokenizer, p.query, config.query_tokens),
                clip_tokens(tokenizer, p.text, config.passage_tokens),
            ),
            "label": float(p.label),
        }
        for p in ordered
    ]


def stage2_groups(pairs: list[RerankPair], config: ProRankConfig) -> list[ScoreGroup]:
    """Per training query and positive: the positive and ``stage2_negatives`` of the query's negatives (seeded)."""
    rng = random.Random(config.seed + 2)
    by_query: dict[str, list[RerankPair]] = {}
    for pair in pairs:
        by_query.setdefault(pair.query_id, []).append(pair)
    groups: list[ScoreGroup] = []
    for members in by_query.values():
        positives = [p for p in members if p.label > 0]
        negatives = [p for p in members if p.label <= 0]
        if not negatives:
            continue
        for positive in positives:
            chosen = rng.sample(negatives, min(len(negatives), config.stage2_negatives))
            group = [positive, *chosen]
            groups.append(ScoreGroup(positive.query, tuple(p.text for p in group), tuple(p.label for p in group)))
    rng.shuffle(groups)
    return groups[: config.max_stage2_groups]


def group_loss(scores: Any, labels: Any, kind: str) -> Any:
    """Listwise: cross-entropy between ``softmax(scores)`` and the labels normalised to sum 1. Pairwise: mean
    ``softplus(s_j - s_i)`` over pairs whose label ``i`` is above label ``j``."""
    from torch.nn import functional as F

    if kind == "listwise":
        target = labels / labels.sum().clamp(min=1e-9)
        return -(target * F.log_softmax(scores, dim=0)).sum()
    if kind == "pairwise":
        diff = labels[:, None] - labels[None, :]
        mask = diff > 0
        if not bool(mask.any()):
            return scores.sum() * 0.0
        margins = scores[:, None] - scores[None, :]
        return F.softplus(-margins[mask]).mean()
    raise InputError(f"Unknown stage-2 loss {kind!r}; use listwise or pairwise.")


def _scorer(model: Any, tokenizer: Any, config: ProRankConfig, name: str) -> PointwiseLLMReranker:
    """A reranker view of the model being trained (no copy), for the dev pairs."""
    return PointwiseLLMReranker.from_model(
        model,
        tokenizer,
        passage_tokens=config.passage_tokens,
        query_tokens=config.query_tokens,
        batch_size=8,
        name=name,
    )


def _load_base(config: ProRankConfig) -> tuple[Any, Any, str]:
    from hopmem.agents.llm.transformers_llm import TransformersLLM

    llm = TransformersLLM(config.base_model)
    return llm.model, llm.tokenizer, llm.name


def run_stage2(
    model: Any,
    tokenizer: Any,
    groups: list[ScoreGroup],
    config: ProRankConfig,
    *,
    checkpoint: Path,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-grained score learning on the logit difference; returns losses and step counts."""
    import torch
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from tqdm.auto import tqdm

    if not groups:
        raise InputError("Stage 2 has no group with a positive and a negative; add data or lower --stage2-negatives.")
    yes_id, no_id = label_token_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rng = random.Random(config.seed + 3)
    order: list[int] = []
    for _ in range(config.stage2_epochs):
        epoch = list(range(len(groups)))
        rng.shuffle(epoch)
        order += epoch
    total = len(order)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.stage2_lr, weight_decay=0.0)
    scheduler = linear_schedule(optimizer, total, total // 10)
    start, losses = 0, []
    stale = f"The stage-2 checkpoint {checkpoint} is from a run with other settings; remove it."
    state = load_checkpoint(checkpoint, total, stale) if config.resume else None
    if state is not None:
        set_peft_model_state_dict(model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, losses = int(state["step"]), list(state["losses"])
        log.info("resuming stage 2 from step %d of %d", start, total)
    model.train()
    bar = tqdm(
        range(start, total), desc="prorank stage 2", unit="group", initial=start, total=total, disable=not progress
    )
    for step in bar:
        group = groups[order[step]]
        batch = [
            encode_pointwise(
                tokenizer, group.query, text, passage_tokens=config.passage_tokens, query_tokens=config.query_tokens
            )
            for text in group.texts
        ]
        scores = relevance_logits(model, batch, yes_id, no_id, int(pad))
        loss = group_loss(scores, torch.tensor(group.labels, dtype=torch.float32), config.stage2_loss)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < total:
            state = {
                "adapter": get_peft_model_state_dict(model),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step + 1,
                "total_steps": total,
                "losses": losses,
            }
            save_checkpoint(checkpoint, state)
    model.eval()
    return {"steps": total, "resumed_from_step": start, "loss_history": [round(v, 4) for v in losses]}


def train_prorank(
    config: ProRankConfig,
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Run both stages and save the adapter, ``hopmem_reranker.json``, ``metrics.json``, ``data.json`` and a card.

    Args:
        config: the run's settings.
        embedder: the memory's embedder, for mining hard negatives.
        cache_dir: where indexed corpora are cached.
        chunk_size, chunk_overlap: chunking of the indexed corpus.
        progress: progress bars.
        command: the command line, for the card.

    Returns:
        The training report (also ``metrics.json``).

    Raises:
        InputError: on no data set, or data that yields no training pair.
    """
    context = TrainContext(embedder, cache_dir, chunk_size, chunk_overlap, progress, command)
    return ProRankRecipe(config, context).run()


class ProRankRecipe(RerankerRecipe[ProRankConfig]):
    """Stage 1 (GRPO prompt warm-up) then stage 2 (score learning) on one LoRA adapter."""

    name = "prorank"
    blend: dict[str, Any] = {"weight": 0.0, "chosen_on": "not chosen", "ndcg@10": {}}  # noqa: RUF012 - set by fit

    def check(self) -> None:
        super().check()
        if self.config.stage1.steps <= 0 and self.config.stage2_epochs <= 0:
            raise InputError("Both stages are switched off; give stage-1 steps or stage-2 epochs.")

    def fit(self, data: TrainingData) -> dict[str, Any]:
        import torch

        config, progress = self.config, self.context.progress
        torch.manual_seed(config.seed)
        model, tokenizer, base_name = _load_base(config)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        before = dev_metrics(_scorer(model, tokenizer, config, "base"), data.dev)
        seconds: dict[str, float] = {"data": round(self.data_seconds, 1)}

        t0 = time.perf_counter()
        model, stage1_report = self._stage1(model, tokenizer, data)
        seconds["stage1"] = round(time.perf_counter() - t0, 1)
        after_stage1 = dev_metrics(_scorer(model, tokenizer, config, "stage1"), data.dev)

        t0 = time.perf_counter()
        stage2_report: dict[str, Any] = {"steps": 0}
        groups = stage2_groups(data.train, config)
        soft = self._distill_groups(data) if config.stage2_epochs > 0 else []
        if soft:
            groups = groups + soft
            random.Random(config.seed + 4).shuffle(groups)
        if config.stage2_epochs > 0:
            stage2_report = run_stage2(
                model, tokenizer, groups, config, checkpoint=self.checkpoints / "stage2.pt", progress=progress
            )
            stage2_report["groups"] = len(groups)
            stage2_report["distill_groups"] = len(soft)
            if soft:
                stage2_report["distill_teacher"] = self.teacher_name
        seconds["stage2"] = round(time.perf_counter() - t0, 1)
        model.eval()
        after = dev_metrics(_scorer(model, tokenizer, config, "prorank"), data.dev)
        t0 = time.perf_counter()
        self.blend = choose_blend(_scorer(model, tokenizer, config, "prorank"), data.holdout, config.blend_grid)
        seconds["blend"] = round(time.perf_counter() - t0, 1)
        seconds["total"] = round(self.elapsed(), 1)
        report: dict[str, Any] = {
            "recipe": self.name,
            "config": self.config_fields(),
            "base_model": {"name": config.base_model, "loaded_as": base_name},
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            **self.data_fields(data),
            "stage1": stage1_report,
            "stage2": stage2_report,
            "dev_before": before,
            "dev_after_stage1": after_stage1,
            "dev_after": after,
            "blend": self.blend,
            "seconds": seconds,
        }
        self.out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(self.out))
        return report

    teacher_name = ""

    def _distill_groups(self, data: TrainingData) -> list[ScoreGroup]:
        """The soft-label groups (:mod:`hopmem.finetune.distill`), scored by the cross-encoder teacher."""
        config = self.config
        if config.distill_groups <= 0:
            return []
        from hopmem.agents.rerank.cross_encoder import CrossEncoderReranker
        from hopmem.agents.rerank.model_paths import find_cross_encoder
        from hopmem.memory.model_paths import display_path

        folder = find_cross_encoder(config.distill_teacher or None, self.context.cache_dir)
        self.teacher_name = display_path(folder)
        teacher = CrossEncoderReranker(folder)
        found = distill_groups(
            data.pools,
            teacher,
            n_groups=config.distill_groups,
            size=config.stage2_negatives + 1,
            temperature=config.distill_temperature,
            seed=config.seed + 5,
        )
        return [ScoreGroup(query, texts, labels) for query, texts, labels in found]

    def _stage1(self, model: Any, tokenizer: Any, data: TrainingData) -> tuple[Any, dict[str, Any]]:
        """The GRPO warm-up (or its saved adapter on resume); the model comes back wrapped in its LoRA adapter."""
        config = self.config
        peft_config = lora_config(config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets)
        stage1_adapter = self.checkpoints / "stage1-adapter"
        if config.stage1.steps > 0 and config.resume and (stage1_adapter / "adapter_config.json").is_file():
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(stage1_adapter), is_trainable=True)
            log.info("stage 1 already done: loaded %s", stage1_adapter)
            return model, json.loads((stage1_adapter / "stage1.json").read_text(encoding="utf-8"))
        if config.stage1.steps <= 0:
            from peft import get_peft_model

            return get_peft_model(model, peft_config), {"steps": 0}
        reward_log = RewardLog(config.stage1.num_generations)
        rows = stage1_rows(data.train, tokenizer, config)
        model, history = run_grpo(
            model,
            tokenizer,
            rows,
            [pointwise_reward_func(reward_log)],
            settings=config.stage1,
            output_dir=self.checkpoints / "stage1",
            peft_config=peft_config,
            seed=config.seed,
            resume=config.resume,
            progress=self.context.progress,
        )
        stage1_report = {
            "steps": config.stage1.steps,
            "prompts": len(rows),
            "rewards": reward_log.summary(),
            "log": grpo_log(history),
        }
        model.save_pretrained(str(stage1_adapter))
        (stage1_adapter / "stage1.json").write_text(json.dumps(stage1_report) + "\n", encoding="utf-8")
        return model, stage1_report

    def adapter_record(self) -> dict[str, Any]:
        return {
            "recipe": self.name,
            "base_model": self.config.base_model,
            "passage_tokens": self.config.passage_tokens,
            "query_tokens": self.config.query_tokens,
            "score": 'logit("1") - logit("0")',
            "blend": self.blend["weight"],
            "blend_chosen_on": self.blend["chosen_on"],
        }

    def model_card(self, report: dict[str, Any]) -> str:
        from hopmem.finetune.prorank_card import model_card

        return model_card(report)
