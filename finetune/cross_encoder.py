"""Supervised training of the cross-encoder reranker (``hopmem finetune reranker --recipe cross-encoder``).

The model starts from the packaged all-MiniLM-L6-v2 encoder with a fresh, seeded 1-logit head
(:func:`hopmem.agents.rerank.cross_encoder.init_cross_encoder`) and learns pointwise relevance:
binary cross-entropy between its
logit and the pair's label (a positive's grade divided by the data set's top grade, 0 for a negative). Pairs come
from the training splits (:mod:`hopmem.finetune.reranker_data`: qrels positives and negatives mined with the memory's
hybrid search) and from title pseudo-queries of each corpus (a descriptive title is the query, its document's body
the positive), which read no query or judgement. On qrels pairs alone (a few hundred queries) the fresh head barely
learns; the title pairs are what make it rank (docs/reranking.md).

A share of each training split is held out; after training, the weight of the blend with the candidates' order
(:func:`hopmem.agents.rerank.cross_encoder.blend_with_order`) is chosen on those queries' hybrid candidates
and saved beside the
model, so the reranker adds what it knows to the hybrid order instead of replacing it. Before and after training
the same dev pairs (dev-split queries, never trained on) are scored, and the model card reports both.

Cost bounds this recipe on a laptop: a 2-core CPU trains about 13 pairs of 128 tokens per second, so the defaults
cap the title queries per corpus, the qrels pairs (``max_train_pairs``), the epochs and the length of a pair.
Checkpoints (model, optimiser, scheduler, step) are written every ``checkpoint_every`` steps and a run started again
with ``resume`` continues from the last one; batch order is fixed by the seed.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.agents.rerank.cross_encoder import (
    BLEND_FILE,
    DEFAULT_MAX_LENGTH,
    CrossEncoderReranker,
    init_cross_encoder,
)
from hopmem.finetune.blend import choose_blend
from hopmem.finetune.dev_figures import dev_heading, dev_metrics, shown
from hopmem.finetune.recipe import RerankerRecipe, TrainContext, load_checkpoint, save_checkpoint
from hopmem.finetune.reranker_data import TrainingData, data_card_lines
from hopmem.finetune.schedule import linear_schedule
from hopmem.memory.errors import InputError
from hopmem.memory.model_paths import display_path, resolve_embedder_path

if TYPE_CHECKING:
    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "last.pt"


@dataclass
class CrossEncoderTrainConfig:
    """Settings of one cross-encoder training run (all saved in the model card and ``metrics.json``).

    Args:
        datasets: BEIR folders whose training splits are used (each split by :func:`query_splits`).
        output: folder the trained model is saved into.
        base_model: the encoder the cross-encoder starts from (a packaged alias, a local folder or a cached HF id).
        max_length: tokens per (query, passage) pair, in training and saved for inference.
        max_positives: judged positives per training query (best grades first).
        n_negatives: negatives per training query (judged grade-0 first, then mined ones).
        mine_depth: hybrid-search documents per query that mined negatives are drawn from.
        max_train_pairs: cap on training pairs over all data sets (a seeded sample of whole queries beyond it).
        dev_queries: dev-split queries per data set whose pairs are scored before and after training.
        epochs: passes over the training pairs.
        batch_size: pairs per optimiser step.
        lr: AdamW learning rate (linear warm-up, then linear decay).
        warmup_fraction: share of the steps spent warming up.
        weight_decay: AdamW weight decay.
        head_lr_scale: the fresh head's learning rate is ``lr`` times this (it starts from nothing, the encoder does
            not).
        title_queries: per data set, at most this many title pseudo-queries (:func:`title_pairs`; 0 turns them off).
        title_min_words: titles shorter than this are not used as queries.
        title_negatives: negatives per title pseudo-query.
        holdout_fraction: share of each training split kept out of training to choose the blend weight on.
        own_distractors: negatives per question from its own distractor paragraphs
            (:mod:`hopmem.finetune.distractors`; 0, the shipped model's setting, turns them off).
        freeze_word_embeddings: keep the base encoder's word embeddings as they are (half of MiniLM's parameters).
            The shipped model then stores only the other half and takes the embeddings from the packaged MiniLM
            (:mod:`hopmem.agents.rerank.cross_encoder_pack`), which keeps it under 25 MB at the trained model's quality.
        blend_grid: blend weights tried on the held-out queries
            (:func:`hopmem.agents.rerank.cross_encoder.blend_with_order`).
        checkpoint_every: optimiser steps between checkpoints.
        keep_checkpoints: keep the checkpoint folder after a finished run.
        resume: continue from the last checkpoint in ``output`` when there is one.
        seed: seeds the head, the pair sampling and the batch order.
    """

    datasets: tuple[str, ...]
    output: str
    base_model: str = "all-MiniLM-L6-v2"
    max_length: int = DEFAULT_MAX_LENGTH
    max_positives: int = 3
    n_negatives: int = 3
    mine_depth: int = 30
    max_train_pairs: int = 900
    dev_queries: int = 25
    epochs: int = 1
    batch_size: int = 16
    lr: float = 1e-4
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    head_lr_scale: float = 10.0
    title_queries: int = 600
    title_min_words: int = 4
    title_negatives: int = 3
    holdout_fraction: float = 0.2
    own_distractors: int = 0
    freeze_word_embeddings: bool = True
    blend_grid: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    checkpoint_every: int = 20
    keep_checkpoints: bool = False
    resume: bool = False
    seed: int = 0


def train_cross_encoder(
    config: CrossEncoderTrainConfig,
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train, save the model with its card, ``metrics.json`` and ``data.json`` into ``config.output``.

    Args:
        config: the run's settings.
        embedder: the memory's embedder, for mining hard negatives with hybrid search.
        cache_dir: where indexed corpora are cached.
        chunk_size: chunking of the indexed corpus (the memory's settings).
        chunk_overlap: chunk overlap of the indexed corpus.
        progress: progress bars.
        command: the command line, recorded in the card.

    Returns:
        The training report (also ``metrics.json``).
    """
    context = TrainContext(embedder, cache_dir, chunk_size, chunk_overlap, progress, command)
    return CrossEncoderRecipe(config, context).run()


class CrossEncoderRecipe(RerankerRecipe[CrossEncoderTrainConfig]):
    """BCE on the logit of a fresh head over the base encoder, then the blend weight on held-out queries."""

    name = "cross-encoder"

    def fit(self, data: TrainingData) -> dict[str, Any]:
        import torch

        config = self.config
        base = resolve_embedder_path(config.base_model)
        model = init_cross_encoder(base, seed=config.seed, max_length=config.max_length)
        reranker = CrossEncoderReranker(base, model=model, batch_size=32, name="cross-encoder-untrained")
        before = dev_metrics(reranker, data.dev)
        net: Any = model.model
        tokenizer: Any = model.tokenizer
        if net is None or tokenizer is None:
            raise InputError(
                f"{base} did not load as a transformer with a tokenizer; pass --base-model of a BERT-like model."
            )
        rng = random.Random(config.seed)
        order: list[int] = []
        for _ in range(config.epochs):
            epoch = list(range(len(data.train)))
            rng.shuffle(epoch)
            order += epoch
        batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        total_steps = len(batches)
        if config.freeze_word_embeddings:
            net.get_input_embeddings().weight.requires_grad_(False)
        trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
        head = [p for n, p in trainable if n.startswith(("classifier", "bert.pooler"))]
        body = [p for n, p in trainable if not n.startswith(("classifier", "bert.pooler"))]
        optimizer = torch.optim.AdamW(
            [{"params": body, "lr": config.lr}, {"params": head, "lr": config.lr * config.head_lr_scale}],
            weight_decay=config.weight_decay,
        )
        scheduler = linear_schedule(optimizer, total_steps, int(total_steps * config.warmup_fraction))
        checkpoint = self.checkpoints / CHECKPOINT_FILE
        start_step = 0
        losses: list[float] = []
        stale = f"The checkpoint in {checkpoint.parent} is from a run with other settings; remove it."
        state = load_checkpoint(checkpoint, total_steps, stale) if config.resume else None
        if state is not None:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_step, losses = int(state["step"]), list(state["losses"])
            log.info("resuming from step %d of %d", start_step, total_steps)
        train_started = time.perf_counter()
        self._train(net, tokenizer, data, batches, optimizer, scheduler, start_step, losses)
        train_seconds = time.perf_counter() - train_started
        after = dev_metrics(reranker, data.dev)
        blend = choose_blend(reranker, data.holdout, config.blend_grid)
        report: dict[str, Any] = {
            "recipe": self.name,
            "config": self.config_fields(),
            "base_model": {"name": config.base_model, "path": display_path(base)},
            "parameters": sum(p.numel() for p in net.parameters()),
            "trained_parameters": sum(p.numel() for _, p in trainable),
            **self.data_fields(data),
            "train_positives": sum(p.kind == "positive" for p in data.train),
            "steps": total_steps,
            "resumed_from_step": start_step,
            "loss_first": round(sum(losses[:10]) / max(1, len(losses[:10])), 4),
            "loss_last": round(sum(losses[-10:]) / max(1, len(losses[-10:])), 4),
            "loss_history": [round(v, 4) for v in losses],
            "dev_before": before,
            "dev_after": after,
            "blend": blend,
            "seconds": {
                "data": round(self.data_seconds, 1),
                "train": round(train_seconds, 1),
                "total": round(self.elapsed(), 1),
            },
            "pairs_per_second": round((total_steps - start_step) * config.batch_size / max(train_seconds, 1e-9), 2),
        }
        self.out.mkdir(parents=True, exist_ok=True)
        model.save(str(self.out))
        (self.out / BLEND_FILE).write_text(
            json.dumps({"blend": blend["weight"], "chosen_on": blend["chosen_on"]}, indent=2) + "\n", encoding="utf-8"
        )
        return report

    def _train(
        self,
        net: Any,
        tokenizer: Any,
        data: TrainingData,
        batches: list[list[int]],
        optimizer: Any,
        scheduler: Any,
        start_step: int,
        losses: list[float],
    ) -> None:
        """The steps from ``start_step`` on (``losses`` grows in place), a checkpoint every ``checkpoint_every``."""
        import torch
        from torch.nn import functional as F
        from tqdm.auto import tqdm

        config, total_steps = self.config, len(batches)
        checkpoint = self.checkpoints / CHECKPOINT_FILE
        net.train()
        bar = tqdm(
            range(start_step, total_steps),
            desc="cross-encoder steps",
            unit="step",
            initial=start_step,
            total=total_steps,
            disable=not self.context.progress,
        )
        for step in bar:
            batch = [data.train[i] for i in batches[step]]
            encoded = tokenizer(
                [p.query for p in batch],
                [p.text for p in batch],
                truncation=True,
                max_length=config.max_length,
                padding=True,
                return_tensors="pt",
            )
            logits = net(**encoded).logits.view(-1).float()
            labels = torch.tensor([p.label for p in batch], dtype=torch.float32)
            loss = F.binary_cross_entropy_with_logits(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
            done = step + 1
            if done % config.checkpoint_every == 0 and done < total_steps:
                state = {
                    "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": done,
                    "total_steps": total_steps,
                    "losses": losses,
                }
                save_checkpoint(checkpoint, state)
        net.eval()

    def model_card(self, report: dict[str, Any]) -> str:
        return model_card(report)


def model_card(report: dict[str, Any]) -> str:
    """The model card (README.md): data and its source, settings, metrics, command."""
    cfg = report["config"]
    lines = [
        "# hopmem cross-encoder reranker",
        "",
        f"A cross-encoder initialised from `{report['base_model']['name']}` (the encoder; a fresh 1-logit head, seed "
        f"{cfg['seed']}), {report['parameters']:,} parameters, trained by `hopmem finetune reranker --recipe "
        "cross-encoder`. Load it with `hopmem.agents.rerank.cross_encoder.CrossEncoderReranker(folder)` or "
        "`sentence_transformers.CrossEncoder(folder)`; the score is the raw logit.",
        "",
        "## Data",
    ]
    lines += data_card_lines(report)
    lines += [
        f"- used in training: {report['train_pairs']} pairs (qrels pairs capped at {cfg['max_train_pairs']}, whole "
        "queries sampled with the seed, plus the title pseudo-queries); labels: grade / top grade for positives, 0 "
        "for negatives",
        f"- title pseudo-queries: up to {cfg['title_queries']} per corpus, titles of {cfg['title_min_words']}+ words "
        f"as the query and the document's body as the positive, {cfg['title_negatives']} negatives from the title's "
        "hybrid top ranks after the first two; titles are stripped from these passages; no query or judgement is read",
        f"- held out of training: {cfg['holdout_fraction']:.0%} of each training split, to choose the blend weight",
        "- the query ids of every split are in `data.json`; evaluations skip the training queries",
        "",
        "## Settings",
        f"- loss: binary cross-entropy on the logit; AdamW lr {cfg['lr']} (head x{cfg['head_lr_scale']:g}; "
        "linear warm-up "
        f"{cfg['warmup_fraction']:.0%}, linear decay), weight decay {cfg['weight_decay']}, batch {cfg['batch_size']}, "
        f"{cfg['epochs']} epoch(s), {report['steps']} steps, gradient norm clipped at 1.0",
        f"- pairs per query: up to {cfg['max_positives']} positives and {cfg['n_negatives']} negatives drawn from "
        f"the top {cfg['mine_depth']} hybrid-search documents; max length {cfg['max_length']} tokens",
        "",
        dev_heading(report["dev_after"]),
        "| model | BCE loss | pairwise accuracy | MRR |",
        "|---|---|---|---|",
    ]
    for name, row in (("untrained (fresh head)", report["dev_before"]), ("trained", report["dev_after"])):
        lines.append(f"| {name} | {shown(row['loss'])} | {shown(row['pairwise_accuracy'])} | {shown(row['mrr'])} |")
    lines += [
        "",
        "## Blend with the candidates' order",
        f"Score = (1 - w) * z(logit) + w * z(-log(1 + rank)); w = {report['blend']['weight']} chosen on "
        f"{report['blend']['chosen_on']} (nDCG@10 per w: {report['blend']['ndcg@10']}). It is saved in "
        f"`{BLEND_FILE}` and the reranker applies it; w = 0 is the model alone, 1 the hybrid order.",
        "",
        f"Training loss: {report['loss_first']} (first 10 steps) -> {report['loss_last']} (last 10 steps). "
        "Reranking metrics (nDCG@10, recall@10, MRR@10) come from `hopmem eval rerank`.",
        "",
        f"Took {report['seconds']['total']} s ({report['seconds']['train']} s training, "
        f"{report['pairs_per_second']} pairs/s) on {report['machine']['platform']}, "
        f"{report['machine']['cpus']} CPUs.",
        f"Command: `{report['command'] or 'hopmem finetune reranker --recipe cross-encoder'}`",
        "",
    ]
    return "\n".join(lines)


def default_training_datasets() -> list[Path]:
    """The default reranker training data: ``cranfield``, ``hotpotqa`` and ``hotpotqa-extra`` of ``../shared/data``.

    Looked up beside the working directory and beside the hopmem checkout; only folders that exist are returned.
    """
    roots = [Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[1].parent / "shared" / "data"]
    found: list[Path] = []
    for name in ("cranfield", "hotpotqa", "hotpotqa-extra"):
        for root in roots:
            candidate = root / name
            if (candidate / "corpus.jsonl").is_file() and candidate.resolve() not in [f.resolve() for f in found]:
                found.append(candidate)
                break
    return found
