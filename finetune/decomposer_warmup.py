"""The decomposer's warm-up before GRPO: imitate, per training question, the reward-best plan found by enumeration.

GRPO only reinforces what the policy already samples. Trained from SmolLM2's prompted behaviour, 32 GRPO steps
learned the JSON format and "keep the question whole", never the chain or split plans that help on bridge and
comparison questions, because the policy almost never wrote them (no group with a good chain, no signal toward
one). This stage is expert iteration (rejection-sampling fine-tuning, as rank-r1's supervised warm-up teaches its
format first): for each training question a handful of candidate plans is enumerated -

* ``whole``: keep the question whole;
* ``rules``: the rule planner's plan (:func:`hopmem.agents.planner.rule_plan`: a chain ``[q, "{1} q"]``, a parallel
  split of a comparison, or whole);
* ``chain``: the chain ``[q, "{1} q"]`` even where the rules split in parallel or keep the question whole;
* ``sampled``: a few plans sampled from the base model with the tuned planner's own prompt -

each is scored with the SAME reward GRPO uses (:meth:`hopmem.finetune.decomposer_reward.PlanEnvironment.score`:
the plan's searches RSF-fused, recall@10 or nDCG@10 against the supporting passages, minus the search cost, plus the
format term; a plan ``check_plan`` refuses earns the penalty), and the best one becomes the question's supervised
target. Which is "best" when candidates find the same evidence is the question that matters, because they do for
most questions (the whole question's search already holds both passages): with ``ties="expected"`` (the default) the
plan with the most evidence wins, and among equals the kind of plan (whole, chain, parallel split) with the best mean
reward over the training questions the rules classify alike (bridge, comparison or single) - a tie means the supporting
passages give no reason to prefer either, and the model, which sees only the question, should then do what pays in
expectation for questions like it; per-question ties broken toward fewer searches (``ties="fewer"``, the second and
third runs) made ``whole`` the target of 94% of the questions, so the model learned the majority label, not which kind
of plan pays for which kind of question (whether chaining a bridge question pays on average depends on the search
cost: it finds about 1.2 points more evidence on the training questions). The LoRA adapter is then trained on those
targets with :func:`hopmem.finetune.sft.run_sft` (loss on the reply's tokens only), and GRPO continues from it.

What the warm-up imitates is therefore the reward's own best plan among the enumerated ones, chosen with the
supporting passages in hand; the model must learn to tell from the question alone which kind of plan pays, and GRPO
then refines that choice from the adapter's own samples.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hopmem.agents.planner import rule_plan
from hopmem.agents.prompts import decompose_messages
from hopmem.finetune.decomposer_reward import JSON_PREFIX, PlanScore, plan_prompt
from hopmem.finetune.sft import SFTSettings, run_sft

if TYPE_CHECKING:
    from hopmem.finetune.decomposer_data import DecomposerQuestion
    from hopmem.finetune.decomposer_reward import PlanEnvironment

log = logging.getLogger(__name__)

SOURCES = ("whole", "rules", "chain", "sampled")
"""Candidate sources in tie-break order (an equal reward and equal searches go to the earlier one)."""


@dataclass(frozen=True)
class WarmupSettings:
    """The warm-up's knobs (recorded in ``metrics.json``).

    Args:
        steps: supervised optimiser steps (0 skips the warm-up).
        batch_size: examples per step.
        lr: learning rate of the LoRA weights.
        samples: plans sampled from the base model per question as extra candidates (0: none).
        temperature: their sampling temperature.
        sample_tokens: most tokens of a sampled plan.
        split_share: non-whole targets (chains, splits) are repeated until they make up at least this share of the
            warm-up's examples (0: the targets as found). The reward-best plan is whole for most questions, so without
            it the warmed policy would rarely sample a chain or a split and GRPO would again see no group that holds
            one; the repetition changes how often the policy tries them, not which plan is a question's target.
        ties: how candidates with the same evidence are ordered: ``expected`` by the mean reward of their kind over
            the training questions of the same rules class (the module's docstring says why), ``fewer`` by fewer
            searches, then whole first.
    """

    steps: int = 0
    batch_size: int = 4
    lr: float = 3e-4
    samples: int = 2
    temperature: float = 1.0
    sample_tokens: int = 96
    split_share: float = 0.0
    ties: Literal["expected", "fewer"] = "expected"

    def sft(self) -> SFTSettings:
        """The supervised loop's settings."""
        return SFTSettings(steps=self.steps, batch_size=self.batch_size, lr=self.lr)


@dataclass
class Candidate:
    """One enumerated plan: where it came from, its completion (the text after ``{"``) and what it earned."""

    source: str
    completion: str
    score: PlanScore | None = None


@dataclass
class WarmupTarget:
    """A training question's supervised target: the reward-best candidate, and every candidate's reward."""

    question: DecomposerQuestion
    best: Candidate
    candidates: list[Candidate] = field(default_factory=list)


def plan_completion(mode: str, queries: Sequence[str]) -> str:
    """A plan as the model writes it after the forced ``{"`` (the prompt's examples' JSON layout)."""
    text = json.dumps({"mode": mode, "queries": list(queries)}, ensure_ascii=False)
    return text[len(JSON_PREFIX) :]


def enumerated_plans(question: str, max_subqueries: int) -> list[tuple[str, str]]:
    """``(source, completion)`` of the whole, rules and chain candidates of ``question``, in tie-break order, equal
    completions included (so every source has a plan to average over).

    The tuned planner's sub-queries may restate the whole question after a placeholder
    (:func:`hopmem.agents.planner.tuned_query_chars`), so the chain is ``[q, "{1} q"]`` (the rules' own chain) however
    long the question is.
    """
    rule_mode, rule_queries = rule_plan(question, max_subqueries=max_subqueries)
    plans = [("whole", "whole", [question]), ("rules", rule_mode, rule_queries)]
    if max_subqueries >= 2:
        plans.append(("chain", "sequential", [question, "{1} " + question]))
    return [(source, plan_completion(mode, queries)) for source, mode, queries in plans]


def enumerated_candidates(question: str, max_subqueries: int) -> list[Candidate]:
    """The distinct candidates of :func:`enumerated_plans` (the first source of equal completions kept)."""
    out: list[Candidate] = []
    seen: set[str] = set()
    for source, completion in enumerated_plans(question, max_subqueries):
        if completion not in seen:
            seen.add(completion)
            out.append(Candidate(source, completion))
    return out


def question_class(question: str, max_subqueries: int) -> str:
    """The rules' reading of a question (``sequential`` bridge, ``parallel`` comparison, ``whole``): the classes over
    which ``ties="expected"`` averages each kind of plan."""
    return rule_plan(question, max_subqueries=max_subqueries)[0]


def _rank(candidate: Candidate) -> tuple[float, int, int]:
    score = candidate.score
    assert score is not None  # scored before ranking
    return (round(score.reward, 6), -score.searches, -SOURCES.index(candidate.source))


def _evidence(score: PlanScore, metric: str) -> float:
    return (score.recall if metric == "recall@10" else score.ndcg) if score.valid else float("-inf")


def score_candidates(
    env: PlanEnvironment, question: DecomposerQuestion, candidates: Sequence[Candidate]
) -> list[Candidate]:
    """The distinct candidates, each scored with the plan reward."""
    scored: list[Candidate] = []
    seen: set[str] = set()
    for c in candidates:
        if c.completion in seen:
            continue
        seen.add(c.completion)
        c.score = env.score(c.completion, question.text, question.dataset, question.supporting)
        scored.append(c)
    return scored


def choose_target(env: PlanEnvironment, question: DecomposerQuestion, candidates: Sequence[Candidate]) -> WarmupTarget:
    """Score every candidate with the plan reward and keep the best (ties: fewer searches, then source order)."""
    scored = score_candidates(env, question, candidates)
    return WarmupTarget(question, max(scored, key=_rank), scored)


def plan_kind(candidate: Candidate) -> str | None:
    """The kind of plan an enumerated candidate is (its checked mode: ``whole``, ``sequential`` for the chain,
    ``parallel`` for the rules' split), ``None`` for an invalid or sampled one. Kinds, not sources, are averaged: the
    rules' chain of a short question is the chain candidate itself, and of a long one an invalid plan no one should
    imitate."""
    if candidate.source == "sampled" or candidate.score is None or not candidate.score.valid:
        return None
    return candidate.score.mode


def expected_rewards(
    questions: Sequence[DecomposerQuestion], scored: Sequence[Sequence[Candidate]], max_subqueries: int
) -> dict[str, dict[str, float]]:
    """Mean reward of each kind of valid enumerated plan (:func:`plan_kind`) per rules class of the questions."""
    sums: dict[str, dict[str, list[float]]] = {}
    for q, cands in zip(questions, scored, strict=True):
        per_class = sums.setdefault(question_class(q.text, max_subqueries), {})
        for c in cands:
            kind = plan_kind(c)
            if kind is not None and c.score is not None:
                per_class.setdefault(kind, []).append(c.score.reward)
    return {cls: {k: round(sum(v) / len(v), 6) for k, v in kinds.items()} for cls, kinds in sorted(sums.items())}


def choose_expected(
    question: DecomposerQuestion,
    scored: Sequence[Candidate],
    means: dict[str, dict[str, float]],
    *,
    metric: str,
    max_subqueries: int,
) -> WarmupTarget:
    """The candidate with the most evidence; among equals, the kind with the best mean reward in the question's
    class (a sampled plan has no kind: it wins only with strictly more evidence), then fewer searches."""
    kinds = means.get(question_class(question.text, max_subqueries), {})

    def rank(c: Candidate) -> tuple[float, float, int, int]:
        assert c.score is not None
        kind = plan_kind(c)
        expected = kinds.get(kind, float("-inf")) if kind is not None else float("-inf")
        return (round(_evidence(c.score, metric), 6), expected, -c.score.searches, -SOURCES.index(c.source))

    return WarmupTarget(question, max(scored, key=rank), list(scored))


def sample_plans(
    model: Any, tokenizer: Any, questions: Sequence[DecomposerQuestion], settings: WarmupSettings, max_subqueries: int
) -> list[list[str]]:
    """``settings.samples`` completions per question, sampled from ``model`` with the tuned planner's prompt."""
    import torch

    if settings.samples <= 0:
        return [[] for _ in questions]
    tokenizer.padding_side = "left"
    out: list[list[str]] = []
    model.eval()
    per_batch = max(1, 8 // settings.samples)
    for start in range(0, len(questions), per_batch):
        chunk = questions[start : start + per_batch]
        prompts = [plan_prompt(tokenizer, q.text, max_subqueries) for q in chunk for _ in range(settings.samples)]
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            generated = model.generate(
                **encoded,
                max_new_tokens=settings.sample_tokens,
                do_sample=True,
                temperature=settings.temperature,
                top_p=1.0,
                top_k=0,
                pad_token_id=tokenizer.pad_token_id,
            )
        width = encoded["input_ids"].shape[1]
        texts = [tokenizer.decode(row[width:], skip_special_tokens=True) for row in generated]
        out += [texts[i * settings.samples : (i + 1) * settings.samples] for i in range(len(chunk))]
    return out


def warmup_targets(
    env: PlanEnvironment,
    questions: Sequence[DecomposerQuestion],
    sampled: Sequence[Sequence[str]],
    max_subqueries: int,
    ties: Literal["expected", "fewer"] = "expected",
) -> list[WarmupTarget]:
    """Every training question's target among its enumerated and sampled candidates (``ties``: see
    :class:`WarmupSettings`)."""
    scored = [
        score_candidates(env, q, enumerated_candidates(q.text, max_subqueries) + [Candidate("sampled", s) for s in ss])
        for q, ss in zip(questions, sampled, strict=True)
    ]
    if ties == "fewer":
        return [WarmupTarget(q, max(cands, key=_rank), cands) for q, cands in zip(questions, scored, strict=True)]
    if ties != "expected":
        raise ValueError(f"ties must be 'expected' or 'fewer', not {ties!r}")
    means = expected_rewards(questions, scored, max_subqueries)
    log.info("mean reward of each kind of plan per question class: %s", means)
    return [
        choose_expected(q, cands, means, metric=env.weights.metric, max_subqueries=max_subqueries)
        for q, cands in zip(questions, scored, strict=True)
    ]


def target_summary(targets: Sequence[WarmupTarget]) -> dict[str, Any]:
    """What the targets are: the share of each winning source and plan mode, and their mean recall and reward
    against the whole question's (the card's "target modes")."""
    n = max(1, len(targets))
    sources: dict[str, int] = {}
    modes: dict[str, int] = {}
    valid_samples = total_samples = 0
    for t in targets:
        score = t.best.score
        assert score is not None
        sources[t.best.source] = sources.get(t.best.source, 0) + 1
        modes[score.mode] = modes.get(score.mode, 0) + 1
        for c in t.candidates:
            if c.source == "sampled":
                total_samples += 1
                valid_samples += bool(c.score and c.score.valid)
    whole = [next((c.score for c in t.candidates if c.source == "whole"), None) for t in targets]
    return {
        "questions": len(targets),
        "sources": {k: round(v / n, 4) for k, v in sorted(sources.items())},
        "modes": {k: round(v / n, 4) for k, v in sorted(modes.items())},
        "counts": dict(sorted(modes.items())),
        "target_recall@10": round(sum(t.best.score.recall for t in targets if t.best.score) / n, 4),
        "whole_recall@10": round(sum(s.recall for s in whole if s) / n, 4),
        "target_reward": round(sum(t.best.score.reward for t in targets if t.best.score) / n, 4),
        "sampled_valid": round(valid_samples / total_samples, 4) if total_samples else None,
    }


def warmup_rows(targets: Sequence[WarmupTarget], max_subqueries: int) -> list[dict[str, Any]]:
    """Supervised rows for :func:`run_sft`: the tuned planner's chat prompt and the target plan as the reply (the
    forced ``{"`` included, so the tokens trained on are the ones inference continues from)."""
    return [
        {
            "prompt": decompose_messages(t.question.text, max_subqueries=max_subqueries),
            "reply": JSON_PREFIX + t.best.completion,
        }
        for t in targets
    ]


def balanced(targets: Sequence[WarmupTarget], share: float, seed: int) -> list[WarmupTarget]:
    """``targets`` with the non-whole ones repeated (cycled in a seeded order) until they make up ``share`` of the
    list; unchanged when ``share`` is 0, already met, or there is no non-whole target."""
    import random

    split = [t for t in targets if t.best.score is not None and t.best.score.mode != "whole"]
    out = list(targets)
    if share <= 0 or not split or share >= 1:
        return out
    whole = len(out) - len(split)
    need = int(share * whole / (1 - share) + 0.999) - len(split)
    order = list(split)
    random.Random(seed).shuffle(order)
    out += [order[i % len(order)] for i in range(max(0, need))]
    return out


def run_warmup(
    model: Any,
    tokenizer: Any,
    targets: Sequence[WarmupTarget],
    settings: WarmupSettings,
    *,
    max_subqueries: int,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Supervised training of ``model`` (a trainable ``PeftModel``) on the targets; the loss history and settings."""
    examples = balanced(targets, settings.split_share, seed)
    rows = warmup_rows(examples, max_subqueries)
    result = run_sft(model, tokenizer, rows, settings.sft(), seed=seed, progress=progress)
    losses = result["loss_history"]
    tail = losses[-10:]
    split = sum(1 for t in examples if t.best.score is not None and t.best.score.mode != "whole")
    return {
        **result,
        "distinct_targets": len(targets),
        "split_examples": round(split / max(1, len(examples)), 4),
        "first_loss": round(sum(losses[:10]) / max(1, len(losses[:10])), 4),
        "final_loss": round(sum(tail) / max(1, len(tail)), 4),
    }
