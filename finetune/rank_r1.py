"""The ``rank-r1`` recipe: a setwise reasoning reranker tuned with GRPO on a LoRA adapter (Rank-R1, arXiv 2503.06034).

The model reads the prompt of :func:`hopmem.agents.rerank.prompts.setwise_messages` (a query and ``set_size``
numbered passages), reasons inside ``<think>...</think>`` and names the most relevant passage as
``<answer>[k]</answer>``. Training has two stages on one LoRA adapter (only its weights change):

1. a supervised warm-up (:mod:`hopmem.finetune.sft`) on replies built from the qrels: for each training set, a short
   ``<think>`` naming the query words the best-judged passage shares, then ``<answer>[k]</answer>`` with that
   passage. A 135M model never wrote the format by itself (35 of 35 dev selections fell back without it), so GRPO
   had no well-formed answer to reinforce; ``sft.steps = 0`` skips the stage.
2. GRPO: TRL's ``GRPOTrainer`` samples several replies per prompt and rewards the label of the chosen passage relative
   to the set's best (or, with ``ndcg_reward``, GroupRank's NDCG-style gain), plus a bonus for the format
   (:func:`hopmem.finetune.rewards.setwise_reward`); ``grpo.steps = 0`` skips it.

The dev view is measured before training, after the warm-up and after GRPO; its ``valid_answer_rate`` is the share of
model calls whose reply named a valid passage (1 - the fallback rate).

Prompts come from the training split of each BEIR folder (:mod:`hopmem.finetune.reranker_data`): per training query
and positive, a set holding that positive, at least one negative (judged or mined with the memory's hybrid search)
and more of the query's passages up to ``set_size``, in a seeded random order, so the answer's position carries no
signal. The training query ids are saved in ``data.json`` so evaluations skip them.

Dev metrics (before and after training) score the dev queries' passages with the same
:class:`hopmem.agents.rerank.setwise.SetwiseLLMReranker` the agent uses: the first ``dev_depth`` places by repeated
selection, the rest in a seeded random order (never the pairs' own order, which lists positives first and would
flatter a model that only falls back). "After" is measured on the saved adapter, loaded as the agent loads it.
Generation on a CPU is slow, so this view is small on purpose (``dev_queries`` 5, ``dev_depth`` 3).

GRPO's generation goes through transformers (why not vLLM: :mod:`hopmem.finetune.grpo`); checkpoints are written by TRL
under ``output/checkpoints`` every ``checkpoint_every`` steps and ``resume`` continues from the newest.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.agents.rerank.model_paths import RECORD_FILE
from hopmem.agents.rerank.pointwise import DEFAULT_BASE_MODEL, DEFAULT_PASSAGE_TOKENS, DEFAULT_QUERY_TOKENS
from hopmem.agents.rerank.prompts import clip_tokens, setwise_messages
from hopmem.agents.rerank.setwise import SetwiseLLMReranker
from hopmem.finetune.dev_figures import chance_metrics, dev_metrics
from hopmem.finetune.grpo import LORA_TARGETS, GRPOSettings, grpo_log, lora_config, run_grpo
from hopmem.finetune.rank_r1_card import model_card
from hopmem.finetune.recipe import RerankerRecipe, TrainContext
from hopmem.finetune.reranker_data import RerankPair, TrainingData, portable_adapter_config
from hopmem.finetune.rewards import RewardLog, setwise_reward_func
from hopmem.finetune.sft import SFTSettings, run_sft
from hopmem.memory.errors import InputError

if TYPE_CHECKING:
    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)

RECIPE = "rank-r1"


def _default_grpo() -> GRPOSettings:
    """Room for a short reasoning and the answer; fewer steps than prorank, as each one generates far more."""
    return GRPOSettings(steps=30, max_completion_length=192)


@dataclass
class RankR1Config:
    """Settings of one ``rank-r1`` run (saved in ``metrics.json`` and the model card).

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
        sft: the supervised warm-up's settings (``steps = 0`` skips it).
        grpo: the GRPO settings; its ``checkpoint_every`` is replaced by this config's (``steps = 0`` skips it).
        set_size: passages per prompt (at least 2; recorded for inference).
        small_sets: share of training sets cut to fewer passages (2 to ``set_size - 1``, uniformly): the tournament
            also asks windows smaller than ``set_size`` (a list's last window, the last levels), and a model that only
            ever saw full sets answers ``[set_size]`` there too, which is no valid passage.
        ndcg_reward: reward the graded NDCG-style gain of the choice instead of its label over the set's best.
        dev_depth: places the dev view fills by selection per dev query (each costs model calls).
        checkpoint_every: GRPO steps between checkpoints.
        keep_checkpoints: keep ``checkpoints/`` after a finished run.
        resume: continue from the newest checkpoint in ``output/checkpoints``.
        seed: seeds sampling, set building, data order and LoRA initialisation.
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
    dev_queries: int = 5
    sft: SFTSettings = field(default_factory=SFTSettings)
    grpo: GRPOSettings = field(default_factory=_default_grpo)
    set_size: int = 4
    small_sets: float = 0.5
    ndcg_reward: bool = False
    dev_depth: int = 3
    checkpoint_every: int = 20
    keep_checkpoints: bool = False
    resume: bool = False
    seed: int = 0


def setwise_rows(pairs: list[RerankPair], tokenizer: Any, config: RankR1Config) -> list[dict[str, Any]]:
    """GRPO prompts: per training query and positive, one set of up to ``set_size`` of the query's passages.

    Each set holds that positive, one of the query's negatives and, to fill it, others of the query's passages
    (positives too, so graded choices occur), shuffled; queries without both a positive and a negative give no set,
    since every choice in such a set would earn the same reward. Rows are shuffled too (all seeded). Each row has the
    ``prompt`` (chat form, passages clipped as the reranker clips them) and ``labels`` (one per passage, in prompt
    order) for :func:`hopmem.finetune.rewards.setwise_reward_func`.

    Raises:
        InputError: when ``set_size`` is below 2.
    """
    return [
        {"prompt": setwise_messages(query, texts), "labels": labels}
        for query, texts, labels in _sets(pairs, tokenizer, config)
    ]


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]{3,}")


def warmup_reply(query: str, passages: list[str], labels: list[float]) -> str:
    """The supervised reply for one set, from its labels: a short reasoning naming (up to four) query words the
    best-judged passage shares, then that passage as the answer (the first of equally judged ones)."""
    best = max(range(len(labels)), key=lambda i: (labels[i], -i))
    in_passage = {w.lower() for w in _WORD.findall(passages[best])}
    shared = list(dict.fromkeys(w for w in _WORD.findall(query) if w.lower() in in_passage))[:4]
    about = f" covers {', '.join(shared)} and" if shared else ""
    return f"<think>Passage [{best + 1}]{about} answers the query best.</think> <answer>[{best + 1}]</answer>"


def warmup_rows(pairs: list[RerankPair], tokenizer: Any, config: RankR1Config) -> list[dict[str, Any]]:
    """Supervised warm-up examples: the sets of :func:`setwise_rows`, each with its :func:`warmup_reply`."""
    return [
        {"prompt": setwise_messages(query, texts), "reply": warmup_reply(query, texts, labels)}
        for query, texts, labels in _sets(pairs, tokenizer, config)
    ]


def _sets(pairs: list[RerankPair], tokenizer: Any, config: RankR1Config) -> list[tuple[str, list[str], list[float]]]:
    """The training sets of :func:`setwise_rows` as (clipped query, clipped passages, labels), seeded."""
    if config.set_size < 2:
        raise InputError(f"A setwise prompt needs at least 2 passages; set_size is {config.set_size}.")
    rng = random.Random(config.seed)
    by_query: dict[str, list[RerankPair]] = {}
    for pair in pairs:
        by_query.setdefault(pair.query_id, []).append(pair)
    clipped: dict[tuple[str, int], str] = {}

    def clip(text: str, budget: int) -> str:
        key = (text, budget)
        if key not in clipped:
            clipped[key] = clip_tokens(tokenizer, text, budget)
        return clipped[key]

    rows: list[tuple[str, list[str], list[float]]] = []
    for members in by_query.values():
        positives = [p for p in members if p.label > 0]
        negatives = [p for p in members if p.label <= 0]
        if not positives or not negatives:
            continue
        for positive in positives:
            negative = rng.choice(negatives)
            rest = [p for p in members if p is not positive and p is not negative]
            size = config.set_size
            if size > 2 and rng.random() < config.small_sets:
                size = rng.randint(2, size - 1)
            chosen = [positive, negative, *rng.sample(rest, min(len(rest), size - 2))]
            rng.shuffle(chosen)
            rows.append(
                (
                    clip(positive.query, config.query_tokens),
                    [clip(p.text, config.passage_tokens) for p in chosen],
                    [float(p.label) for p in chosen],
                )
            )
    rng.shuffle(rows)
    return rows


def shuffled_dev(pairs: list[RerankPair], seed: int) -> list[RerankPair]:
    """``pairs`` in a seeded random order (within each query too), so a reranker that falls back to the given order
    gains nothing from the positives being listed first."""
    out = list(pairs)
    random.Random(seed).shuffle(out)
    return out


class _TracedSetwise(SetwiseLLMReranker):
    """The agent's setwise reranker, keeping every model call's trace entry (the reranker keeps only the last
    ranking's), so the dev view can say where replies failed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[dict[str, Any]] = []

    def order(self, query: str, docs: Sequence[str], depth: int | None = None) -> list[int]:
        out = super().order(query, docs, depth)
        self.calls += self.last_trace
        return out


def reply_stats(calls: list[dict[str, Any]], examples: int = 3) -> dict[str, Any]:
    """How the replies of traced model calls went, per window size (the tournament also asks windows smaller than
    ``set_size``): calls, valid answers and well-formed replies, plus the ends of a few replies that named no valid
    passage (model output on the public dev sets, for diagnosis)."""
    by_size: dict[str, dict[str, int]] = {}
    failed: list[str] = []
    for call in calls:
        row = by_size.setdefault(str(len(call["window"])), {"calls": 0, "valid": 0, "well_formed": 0})
        row["calls"] += 1
        row["valid"] += int(not call.get("fallback", True))
        row["well_formed"] += int(bool(call.get("well_formed")))
        if call.get("fallback", True) and len(failed) < examples:
            failed.append(str(call.get("reply", call.get("error", "")))[-160:])
    return {"by_window_size": dict(sorted(by_size.items())), "invalid_reply_ends": failed}


def _dev(llm: Any, config: RankR1Config, pairs: list[RerankPair], name: str) -> dict[str, Any]:
    """:func:`dev_metrics` of the setwise reranker over ``llm`` (depth ``dev_depth``), plus how its replies went."""
    reranker = _TracedSetwise(
        llm=llm,
        set_size=config.set_size,
        passage_tokens=config.passage_tokens,
        query_tokens=config.query_tokens,
        depth=config.dev_depth,
        max_tokens=config.grpo.max_completion_length,
        name=name,
    )
    metrics: dict[str, Any] = dict(dev_metrics(reranker, pairs))
    calls = reranker.stats["calls"]
    metrics["model_calls"] = calls
    metrics["fallback_rate"] = round(reranker.stats["fallbacks"] / calls, 4) if calls else 0.0
    metrics["valid_answer_rate"] = round(1 - reranker.stats["fallbacks"] / calls, 4) if calls else 0.0
    metrics["replies"] = reply_stats(reranker.calls)
    return metrics


def _load(config: RankR1Config, adapter: str = "") -> Any:
    from hopmem.agents.llm.transformers_llm import TransformersLLM

    # GRPO samples without a repetition penalty, so the dev view decodes without one as well.
    return TransformersLLM(config.base_model, adapter=adapter, repeat_penalty=1.0)


def train_rank_r1(
    config: RankR1Config,
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train with GRPO and save the adapter, ``hopmem_reranker.json``, ``metrics.json``, ``data.json`` and a card.

    Args:
        config: the run's settings.
        embedder: the memory's embedder, for mining hard negatives.
        cache_dir: where indexed corpora are cached.
        chunk_size, chunk_overlap: chunking of the indexed corpus.
        progress: progress bars.
        command: the command line, for the card.

    Returns:
        The training report (also ``metrics.json``): ``grpo`` (steps, prompts, reward summary, TRL's log),
        ``dev_before``/``dev_after`` (:func:`dev_metrics` plus model calls and fallback rate), ``seconds``, ...

    Raises:
        InputError: on no data set, no GRPO steps, or data that yields no training set.
    """
    context = TrainContext(embedder, cache_dir, chunk_size, chunk_overlap, progress, command)
    return RankR1Recipe(config, context).run()


class RankR1Recipe(RerankerRecipe[RankR1Config]):
    """GRPO on setwise prompts; the dev view after training reads the saved adapter, as the agent does."""

    name = RECIPE

    def check(self) -> None:
        super().check()
        if self.config.grpo.steps <= 0 and self.config.sft.steps <= 0:
            raise InputError("Both stages are switched off; give warm-up steps (--sft-steps) or GRPO steps.")

    def fit(self, data: TrainingData) -> dict[str, Any]:
        import torch

        config, out = self.config, self.out
        seconds: dict[str, float] = {"data": round(self.data_seconds, 1)}
        dev = shuffled_dev(data.dev, config.seed + 1)
        torch.manual_seed(config.seed)
        llm = _load(config)
        model, tokenizer = llm.model, llm.tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        rows = setwise_rows(data.train, tokenizer, config)
        if not rows:
            raise InputError(
                "No setwise training prompt could be built: no training query has both a positive and a negative; "
                "raise --negatives or --mine-depth."
            )

        t0 = time.perf_counter()
        before = _dev(llm, config, dev, "rank-r1-base")
        seconds["dev_before"] = round(time.perf_counter() - t0, 1)
        self._save_partial({"dev_before": before, "seconds": seconds})

        from peft import get_peft_model

        peft_config = lora_config(config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets)
        trained: Any = get_peft_model(model, peft_config)
        t0 = time.perf_counter()
        sft_report: dict[str, Any] = {"steps": 0}
        after_sft: dict[str, Any] | None = None
        if config.sft.steps > 0:
            sft_report = run_sft(
                trained,
                tokenizer,
                warmup_rows(data.train, tokenizer, config),
                config.sft,
                seed=config.seed,
                progress=self.context.progress,
            )
        seconds["sft"] = round(time.perf_counter() - t0, 1)
        if config.sft.steps > 0 and config.grpo.steps > 0:
            t0 = time.perf_counter()
            after_sft = _dev(llm, config, dev, "rank-r1-warm-up")
            seconds["dev_after_sft"] = round(time.perf_counter() - t0, 1)
        self._save_partial({"dev_before": before, "sft": sft_report, "dev_after_sft": after_sft, "seconds": seconds})

        t0 = time.perf_counter()
        reward_log = RewardLog(config.grpo.num_generations)
        settings = replace(config.grpo, checkpoint_every=config.checkpoint_every)
        grpo_report: dict[str, Any] = {"steps": 0, "prompts": len(rows)}
        if settings.steps > 0:
            trained, history = run_grpo(
                trained,
                tokenizer,
                rows,
                [setwise_reward_func(reward_log, ndcg=config.ndcg_reward)],
                settings=settings,
                output_dir=self.checkpoints / "grpo",
                seed=config.seed,
                resume=config.resume,
                progress=self.context.progress,
            )
            grpo_report |= {"steps": settings.steps, "rewards": reward_log.summary(), "log": grpo_log(history)}
        seconds["grpo"] = round(time.perf_counter() - t0, 1)
        trainable = sum(p.numel() for p in trained.parameters() if p.requires_grad)
        out.mkdir(parents=True, exist_ok=True)
        trained.save_pretrained(str(out))
        (out / RECORD_FILE).write_text(json.dumps(self.record(), indent=2) + "\n", encoding="utf-8")
        portable_adapter_config(out, config.base_model)
        del llm, model, trained

        t0 = time.perf_counter()
        after = _dev(_load(config, str(out)), config, dev, RECIPE)
        seconds["dev_after"] = round(time.perf_counter() - t0, 1)
        seconds["total"] = round(self.elapsed(), 1)
        return {
            "recipe": RECIPE,
            "config": self.config_fields(),
            "base_model": {"name": config.base_model},
            "trainable_parameters": trainable,
            **self.data_fields(data),
            "sft": sft_report,
            "grpo": grpo_report,
            "dev_chance": chance_metrics(dev, seed=config.seed),
            "dev_before": before,
            "dev_after_sft": after_sft if after_sft is not None else (after if config.grpo.steps <= 0 else None),
            "dev_after": after,
            "seconds": seconds,
        }

    def _save_partial(self, views: dict[str, Any]) -> None:
        """The dev views measured so far, in ``partial-metrics.json`` (kept when a later stage fails, e.g. GRPO killed
        for memory, so the measurements survive; ``metrics.json`` holds them all at the end)."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "partial-metrics.json").write_text(json.dumps(views, indent=2) + "\n", encoding="utf-8")

    def record(self) -> dict[str, Any]:
        """``hopmem_reranker.json``: written before the dev view, which loads the adapter through it."""
        return {
            "recipe": RECIPE,
            "base_model": self.config.base_model,
            "passage_tokens": self.config.passage_tokens,
            "query_tokens": self.config.query_tokens,
            "set_size": self.config.set_size,
            "reply": "<think>...</think> <answer>[k]</answer>",
        }

    def model_card(self, report: dict[str, Any]) -> str:
        return model_card(report)
