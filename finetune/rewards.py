"""Reward functions of the GRPO reranker recipes, in the form TRL's ``GRPOTrainer`` calls them.

TRL calls each function with the batch's ``prompts`` and ``completions`` and every other dataset column as a keyword
list (here ``label`` for pointwise prompts, ``labels`` for setwise ones); it returns one float per completion.
Completions come in groups of ``num_generations`` consecutive samples of the same prompt, and GRPO learns only from
the differences inside a group, so the rewards are shaped to differ: a correct answer earns more than a wrong one,
an exactly formatted one a little more than a loose one, and a reply with no answer at all earns least. A reply that
is not exactly the answer also loses a little for its length (a setwise reply with no answer: on a longer scale, and
it earns a little for the format's tags it has), so even a model that has not yet learned the format (a group of
replies none of which answers) gets rewards that differ, and learns to be brief and to use the format first.

:class:`RewardLog` keeps what each call saw, so training reports (and tests) can show that the groups' rewards had
variance, i.e. that GRPO had a signal to learn from.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hopmem.agents.rerank.prompts import RELEVANT, parse_pointwise, parse_setwise

FORMAT_BONUS = 0.2
NO_ANSWER = -0.5
LENGTH_PENALTY = 0.2
"""Most a reply loses for its length beyond the answer (reached at :data:`LONG_REPLY` characters)."""
LONG_REPLY = 40
SETWISE_LONG_REPLY = 800
"""Characters at which a setwise reply without an answer has lost all of :data:`LENGTH_PENALTY` (about the 192-token
completion budget of the rank-r1 recipe: reasoning replies are long, so the pointwise scale would saturate)."""
SETWISE_TAGS = ("<think>", "</think>", "<answer>")


def completion_text(completion: Any) -> str:
    """The text of one completion, conversational (a list of messages) or plain."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return str(completion)


@dataclass
class RewardLog:
    """Rewards seen in training, per call, and the standard deviation inside each group of generations."""

    group_size: int
    rewards: list[float] = field(default_factory=list)
    group_stds: list[float] = field(default_factory=list)
    answered: list[bool] = field(default_factory=list)

    def add(self, values: Sequence[float], answered: Sequence[bool] = ()) -> None:
        """Record one call's rewards and, when given, which completions held a readable answer."""
        self.rewards += list(values)
        self.answered += list(answered)
        size = max(1, self.group_size)
        for start in range(0, len(values) - size + 1, size):
            group = values[start : start + size]
            self.group_stds.append(statistics.pstdev(group) if len(group) > 1 else 0.0)

    def summary(self) -> dict[str, float | int]:
        """Mean and best reward, share of groups whose rewards varied, mean group std, how many completions were
        seen and the share of them that held a readable answer (whether the model has found the format at all)."""
        if not self.rewards:
            return {"completions": 0, "mean_reward": float("nan"), "groups_with_variance": 0.0, "mean_group_std": 0.0}
        varied = sum(s > 1e-9 for s in self.group_stds)
        summary: dict[str, float | int] = {
            "completions": len(self.rewards),
            "mean_reward": round(statistics.fmean(self.rewards), 4),
            "max_reward": round(max(self.rewards), 4),
            "groups_with_variance": round(varied / max(1, len(self.group_stds)), 4),
            "mean_group_std": round(statistics.fmean(self.group_stds), 4) if self.group_stds else 0.0,
        }
        if self.answered:
            summary["answered"] = round(sum(self.answered) / len(self.answered), 4)
        return summary


def pointwise_reward(text: str, label: float) -> float:
    """Reward of one 0/1 answer to a pair labelled ``label`` in [0, 1] (a graded label is kept as it is).

    Correctness: ``label`` for answering 1, ``1 - label`` for answering 0; a format bonus when the reply is exactly
    the digit, else a length penalty; a fixed penalty when it holds no digit at all.
    """
    digit, exact = parse_pointwise(text)
    correct = NO_ANSWER if digit is None else (label if digit == RELEVANT else 1.0 - label)
    return correct + format_term(text, exact)


def format_term(text: str, exact: bool) -> float:
    """:data:`FORMAT_BONUS` for an exactly formatted reply, else minus a share of :data:`LENGTH_PENALTY` that grows
    with the reply's length."""
    if exact:
        return FORMAT_BONUS
    return -LENGTH_PENALTY * min(len(text.strip()), LONG_REPLY) / LONG_REPLY


def setwise_reward(text: str, labels: Sequence[float], *, ndcg: bool = False) -> float:
    """Reward of one setwise selection over passages labelled ``labels`` (in prompt order).

    Correctness: the chosen passage's label divided by the best label of the set (1 for picking a best one), or with
    ``ndcg`` the gain of the choice relative to the ideal first position, ``(2^l - 1) / (2^max - 1)`` (GroupRank's
    NDCG-style reward; it tells a partly relevant choice from a fully relevant one more sharply). A format bonus for a
    well-formed ``<think>``/``<answer>`` reply; a penalty when no valid passage is named.
    """
    choice, _, well_formed = parse_setwise(text, len(labels))
    if choice is None:
        return NO_ANSWER + setwise_partial_format(text)
    best = max(labels) if labels else 0.0
    if best <= 0:
        correct = 0.0
    elif ndcg:
        correct = (math.pow(2.0, labels[choice]) - 1.0) / (math.pow(2.0, best) - 1.0)
    else:
        correct = labels[choice] / best
    return correct + (FORMAT_BONUS if well_formed else 0.0)


def setwise_partial_format(text: str) -> float:
    """What a setwise reply that names no valid passage earns beside :data:`NO_ANSWER`: up to half the format bonus
    for the tags it has (of ``<think>``, ``</think>``, ``<answer>``), minus up to :data:`LENGTH_PENALTY` for its
    length on the :data:`SETWISE_LONG_REPLY` scale.

    An untuned small model (SmolLM2-135M) answers none of its first setwise prompts in the format; with a flat
    penalty every reply of a group earned the same, so GRPO had nothing to learn from. These terms make such a group's
    rewards differ, towards the format and brevity, while any valid answer still earns more (at least 0).
    """
    lower = text.lower()
    tags = sum(tag in lower for tag in SETWISE_TAGS) / len(SETWISE_TAGS)
    length = min(len(text.strip()), SETWISE_LONG_REPLY) / SETWISE_LONG_REPLY
    return 0.5 * FORMAT_BONUS * tags - LENGTH_PENALTY * length


def pointwise_reward_func(log: RewardLog | None = None) -> Callable[..., list[float]]:
    """A TRL reward function for pointwise prompts whose dataset has a ``label`` column."""

    def relevance_reward(prompts: list[Any], completions: list[Any], label: list[float], **_: Any) -> list[float]:
        texts = [completion_text(c) for c in completions]
        values = [pointwise_reward(t, float(y)) for t, y in zip(texts, label, strict=True)]
        if log is not None:
            log.add(values, [parse_pointwise(t)[0] is not None for t in texts])
        return values

    return relevance_reward


def setwise_reward_func(log: RewardLog | None = None, *, ndcg: bool = False) -> Callable[..., list[float]]:
    """A TRL reward function for setwise prompts whose dataset has a ``labels`` column (one label per passage)."""

    def selection_reward(
        prompts: list[Any], completions: list[Any], labels: list[list[float]], **_: Any
    ) -> list[float]:
        texts = [completion_text(c) for c in completions]
        values = [setwise_reward(t, [float(v) for v in y], ndcg=ndcg) for t, y in zip(texts, labels, strict=True)]
        if log is not None:
            log.add(values, [parse_setwise(t, len(y))[0] is not None for t, y in zip(texts, labels, strict=True)])
        return values

    return selection_reward
