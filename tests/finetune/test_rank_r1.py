"""The rank-r1 recipe on a tiny random Llama with SmolLM2's tokenizer: setwise prompts hold a positive and a negative
with labels in prompt order, two real GRPO steps (TRL GRPOTrainer + peft LoRA) change the adapter and see rewards
that vary, the setwise reward tells graded choices apart, and a whole run writes an adapter the agent's loader
reads."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl", reason="the finetune extra is not installed")
pytest.importorskip("peft", reason="the finetune extra is not installed")

import torch

from hopmem.agents.llm.transformers_llm import TransformersLLM
from hopmem.agents.rerank import load_reranker
from hopmem.agents.rerank.prompts import parse_setwise
from hopmem.agents.rerank.setwise import SetwiseLLMReranker
from hopmem.finetune.grpo import GRPOSettings, lora_config, run_grpo
from hopmem.finetune.rank_r1 import (
    RankR1Config,
    reply_stats,
    setwise_rows,
    shuffled_dev,
    train_rank_r1,
    warmup_reply,
    warmup_rows,
)
from hopmem.finetune.reranker_data import RerankPair
from hopmem.finetune.rewards import FORMAT_BONUS, NO_ANSWER, RewardLog, setwise_reward, setwise_reward_func
from hopmem.finetune.sft import SFTSettings, encode_example, run_sft
from hopmem.memory.errors import InputError
from tests.finetune.test_reranker_data import make_tiny_hotpot

_LISTED = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)


def _pairs() -> list[RerankPair]:
    rows = [
        ("q1", "Which river flows through Paris?", "The Seine flows through Paris.", 1.0),
        ("q1", "Which river flows through Paris?", "Paris lies on a river.", 0.5),
        ("q1", "Which river flows through Paris?", "Bread is baked in an oven.", 0.0),
        ("q1", "Which river flows through Paris?", "The Danube is a long river.", 0.0),
        ("q1", "Which river flows through Paris?", "Tea is grown in India.", 0.0),
        ("q2", "Who wrote Hamlet?", "Hamlet is a tragedy by William Shakespeare.", 1.0),
        ("q2", "Who wrote Hamlet?", "Oak trees grow slowly.", 0.0),
        ("q3", "What is the capital of Peru?", "Lima is the capital of Peru.", 1.0),  # no negative: no set
    ]
    return [
        RerankPair(q, query, f"d{i}", text, label, "positive" if label else "hard-negative")
        for i, (q, query, text, label) in enumerate(rows)
    ]


@pytest.fixture(scope="module")
def tiny_llm(tiny_causal_lm: Path) -> TransformersLLM:
    return TransformersLLM(str(tiny_causal_lm), repeat_penalty=1.0)


def test_setwise_rows_hold_a_positive_and_a_negative_with_labels_in_prompt_order(tiny_llm: TransformersLLM) -> None:
    pairs = _pairs()
    config = RankR1Config(
        datasets=(), output="unused", passage_tokens=24, query_tokens=16, set_size=4, small_sets=0.0, seed=3
    )
    rows = setwise_rows(pairs, tiny_llm.tokenizer, config)
    assert len(rows) == 3  # q1's two positives and q2's one; q3 has no negative
    label_of = {(p.query, p.text): p.label for p in pairs}
    for row in rows:
        user = row["prompt"][1]["content"]
        query = user.split("\n", 1)[0].removeprefix("Query: ")
        passages = [text for _, text in _LISTED.findall(user)]
        assert 2 <= len(passages) <= 4 and len(passages) == len(row["labels"])
        assert row["labels"] == [label_of[(query, text)] for text in passages]
        assert max(row["labels"]) > 0 and min(row["labels"]) == 0
    assert sorted(len(r["labels"]) for r in rows) == [2, 4, 4]  # q2 has only two passages
    assert setwise_rows(pairs, tiny_llm.tokenizer, config) == rows  # seeded
    many = setwise_rows(pairs, tiny_llm.tokenizer, RankR1Config(datasets=(), output="u", set_size=3, seed=0))
    assert all(len(r["labels"]) <= 3 for r in many)
    with pytest.raises(Exception, match="at least 2"):
        setwise_rows(pairs, tiny_llm.tokenizer, RankR1Config(datasets=(), output="u", set_size=1))


def test_a_share_of_training_sets_is_smaller_as_the_tournament_windows_are(tiny_llm: TransformersLLM) -> None:
    pairs = [
        RerankPair(f"q{q}", f"question {q}", f"q{q}d{i}", f"passage {i} of {q}", 1.0 if i == 0 else 0.0, "x")
        for q in range(40)
        for i in range(6)
    ]

    def sizes(small_sets: float) -> list[int]:
        config = RankR1Config(datasets=(), output="u", set_size=4, small_sets=small_sets, seed=1)
        return [len(r["labels"]) for r in setwise_rows(pairs, tiny_llm.tokenizer, config)]

    assert set(sizes(0.0)) == {4}
    assert set(sizes(1.0)) == {2, 3}
    mixed = sizes(0.5)
    assert set(mixed) == {2, 3, 4} and 10 <= mixed.count(4) <= 30  # about half of 40 stay full
    rows = setwise_rows(pairs, tiny_llm.tokenizer, RankR1Config(datasets=(), output="u", small_sets=1.0, seed=1))
    assert all(max(r["labels"]) == 1.0 and min(r["labels"]) == 0.0 for r in rows)  # a positive and a negative each


def test_reply_stats_count_valid_answers_per_window_size() -> None:
    calls: list[dict[str, Any]] = [
        {
            "window": [0, 1, 2, 3],
            "fallback": False,
            "well_formed": True,
            "reply": "<think>a</think><answer>[2]</answer>",
        },
        {"window": [4, 5, 6], "fallback": True, "well_formed": False, "reply": "<think>b</think><answer>[4]</answer>"},
        {"window": [7, 8], "fallback": True, "error": "generation failed"},
        {"window": [7, 8], "fallback": False, "well_formed": False, "reply": "<answer>[1]</answer>"},
    ]
    stats = reply_stats(calls)
    assert stats["by_window_size"] == {
        "2": {"calls": 2, "valid": 1, "well_formed": 0},
        "3": {"calls": 1, "valid": 0, "well_formed": 0},
        "4": {"calls": 1, "valid": 1, "well_formed": 1},
    }
    assert stats["invalid_reply_ends"] == ["<think>b</think><answer>[4]</answer>", "generation failed"]


def test_positions_of_the_best_passage_vary_across_prompts(tiny_llm: TransformersLLM) -> None:
    pairs = [
        RerankPair(f"q{q}", f"question {q}", f"q{q}d{i}", f"passage {i} of {q}", 1.0 if i == 0 else 0.0, "x")
        for q in range(12)
        for i in range(4)
    ]
    rows = setwise_rows(pairs, tiny_llm.tokenizer, RankR1Config(datasets=(), output="u", seed=0))
    assert len({r["labels"].index(1.0) for r in rows}) > 1  # the answer's position carries no signal


def test_setwise_reward_grades_choices_plain_and_ndcg() -> None:
    labels = [0.5, 1.0, 0.0]
    good = "<think>the second names the river</think> <answer>[2]</answer>"
    partial = "<think>maybe</think><answer>[1]</answer>"
    assert setwise_reward(good, labels) == pytest.approx(1.0 + FORMAT_BONUS)
    assert setwise_reward(good, labels, ndcg=True) == pytest.approx(1.0 + FORMAT_BONUS)
    assert setwise_reward(partial, labels) == pytest.approx(0.5 + FORMAT_BONUS)
    assert setwise_reward(partial, labels, ndcg=True) == pytest.approx(math.sqrt(2) - 1 + FORMAT_BONUS)
    assert setwise_reward("<answer>[3]</answer>", labels) == pytest.approx(0.0)  # wrong, and no <think>: no bonus
    assert setwise_reward("<think>x</think><answer>[9]</answer>", labels) < 0  # out of range
    assert setwise_reward("", labels) == NO_ANSWER
    assert setwise_reward("the first one, surely, without any tags at all", labels) < NO_ANSWER  # long and no answer
    # Replies without an answer still differ (SmolLM2's first replies all lack one): tags earn, length costs.
    rambling = "I think passage one is about wings. " * 30
    started = "<think>" + rambling
    closed = "<think>wings</think> <answer>passage one</answer>"
    rewards = [setwise_reward(t, labels) for t in (rambling, rambling[:200], started, closed)]
    assert rewards[0] < rewards[1] and rewards[0] < rewards[2] < rewards[3] < 0.0
    assert max(rewards) < setwise_reward("<answer>[3]</answer>", labels)  # any valid answer earns more
    log = RewardLog(group_size=2)
    func = setwise_reward_func(log, ndcg=True)
    completions = [[{"role": "assistant", "content": t}] for t in (good, partial, good, good)]
    values = func(prompts=[None] * 4, completions=completions, labels=[labels] * 4)
    assert values[0] > values[1] and log.summary()["groups_with_variance"] == 0.5
    func(prompts=[None] * 2, completions=[[{"role": "assistant", "content": t}] for t in (rambling, closed)],
         labels=[labels] * 2)  # fmt: skip
    summary = log.summary()
    assert summary["answered"] == pytest.approx(4 / 6, abs=1e-4) and summary["max_reward"] == pytest.approx(
        max(values), abs=1e-4
    )


def test_two_grpo_steps_change_the_adapter_and_see_rewards_that_vary(tiny_causal_lm: Path, tmp_path: Path) -> None:
    llm = TransformersLLM(str(tiny_causal_lm))
    model, tokenizer = llm.model, llm.tokenizer
    config = RankR1Config(datasets=(), output=str(tmp_path / "out"), passage_tokens=16, query_tokens=12, set_size=3)
    rows = setwise_rows(_pairs(), tokenizer, config)
    log = RewardLog(group_size=4)
    settings = GRPOSettings(steps=2, prompts_per_step=1, num_generations=4, max_completion_length=8, lr=5e-3)
    torch.manual_seed(0)
    trained, history = run_grpo(
        model,
        tokenizer,
        rows,
        [setwise_reward_func(log)],
        settings=settings,
        output_dir=tmp_path / "grpo",
        peft_config=lora_config(4, 8, 0.0, ("q_proj", "v_proj")),
        seed=0,
        progress=False,
    )
    summary = log.summary()
    assert summary["completions"] == 2 * 4
    # a random model names no passage; its replies' lengths differ, so the shaped rewards still vary in a group
    assert summary["groups_with_variance"] > 0, log.rewards
    b_mats = {n: p for n, p in trained.named_parameters() if "lora_B" in n}
    assert b_mats and any(float(p.detach().abs().sum()) > 0 for p in b_mats.values())  # B starts at zero
    assert any("loss" in entry for entry in history)


def test_the_dev_view_never_keeps_the_positives_first() -> None:
    pairs = [RerankPair("q", "q", f"d{i}", f"t{i}", 1.0 if i < 2 else 0.0, "x") for i in range(8)]
    shuffled = shuffled_dev(pairs, 1)
    assert sorted(p.doc_id for p in shuffled) == sorted(p.doc_id for p in pairs)
    assert [p.label for p in shuffled][:2] != [1.0, 1.0]
    assert shuffled_dev(pairs, 1) == shuffled


@pytest.fixture(scope="module")
def tiny(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_hotpot(
        shared_data / "hotpotqa", tmp_path_factory.mktemp("tiny-hotpot-rank-r1"), n_train=3, n_dev=1
    )


def test_a_whole_run_saves_an_adapter_the_agent_loads(
    tiny: Path, tiny_causal_lm: Path, tmp_path: Path, embedder: Any
) -> None:
    out = tmp_path / "rank-r1"
    config = RankR1Config(
        datasets=(str(tiny),),
        output=str(out),
        base_model=str(tiny_causal_lm),
        passage_tokens=16,
        query_tokens=12,
        lora_r=4,
        lora_alpha=8,
        lora_targets=("q_proj", "v_proj"),
        n_negatives=2,
        dev_queries=1,
        dev_depth=1,
        set_size=3,
        sft=SFTSettings(steps=2, batch_size=2, lr=5e-3),
        grpo=GRPOSettings(steps=2, prompts_per_step=1, num_generations=2, max_completion_length=6, lr=5e-3),
    )
    report = train_rank_r1(
        config, embedder, cache_dir=tmp_path / "cache", chunk_size=400, chunk_overlap=0, progress=False
    )
    for name in ("adapter_config.json", "adapter_model.safetensors", "hopmem_reranker.json", "metrics.json"):
        assert (out / name).is_file(), name
    assert "rank-r1" in (out / "README.md").read_text()
    assert not (out / "checkpoints").exists()
    # what the CLI reads
    assert report["grpo"]["steps"] == 2 and report["grpo"]["rewards"]["completions"] == 2 * 2
    assert report["sft"]["steps"] == 2 and len(report["sft"]["loss_history"]) == 2
    for key in ("dev_before", "dev_after_sft", "dev_after"):  # valid answers measured before, after warm-up, after
        assert 0.0 <= report[key]["valid_answer_rate"] <= 1.0
        assert report[key]["valid_answer_rate"] == pytest.approx(1 - report[key]["fallback_rate"], abs=1e-4)
    card = (out / "README.md").read_text()
    assert "after the warm-up" in card
    calls = report["dev_after"]["model_calls"]
    valid = round(report["dev_after"]["valid_answer_rate"] * calls)
    assert f"| {valid} of {calls} |" in card  # a count of the model calls, not a rate
    chance = report["dev_chance"]  # the level a model without skill reaches on the same pairs
    assert chance["pairs"] == report["dev_before"]["pairs"] and chance["draws"] > 0
    assert f"| a random order (mean of {chance['draws']}) | n/a | {chance['pairwise_accuracy']} |" in card
    partial = json.loads((out / "partial-metrics.json").read_text())  # kept if a later stage had failed
    assert partial["dev_before"] == report["dev_before"] and partial["dev_after_sft"] == report["dev_after_sft"]
    sizes = report["dev_after"]["replies"]["by_window_size"]
    assert sum(r["calls"] for r in sizes.values()) == report["dev_after"]["model_calls"]
    assert report["seconds"]["total"] > 0
    for key in ("dev_before", "dev_after"):
        assert {"loss", "pairwise_accuracy", "mrr", "pairs"} <= set(report[key]) and report[key]["pairs"] > 0
        assert report[key]["model_calls"] > 0
    assert json.loads((out / "metrics.json").read_text())["grpo"]["prompts"] > 0
    data = json.loads((out / "data.json").read_text())["datasets"][0]
    assert data["train_ids"] and not set(data["train_ids"]) & set(data["dev_ids"])
    record = json.loads((out / "hopmem_reranker.json").read_text())
    assert record["recipe"] == "rank-r1" and record["set_size"] == 3 and record["base_model"] == str(tiny_causal_lm)
    reranker = load_reranker("rank-r1", out, cache_dir=tmp_path / "cache")
    assert isinstance(reranker, SetwiseLLMReranker)
    assert (reranker.name, reranker.set_size, reranker.passage_tokens) == ("rank-r1", 3, 16)
    assert reranker.llm.name.endswith("+rank-r1")  # the adapter is applied on the recorded base


def test_warmup_replies_name_the_best_judged_passage_in_the_format_the_parser_reads(tiny_llm: TransformersLLM) -> None:
    reply = warmup_reply(
        "Which river flows through Paris?", ["Tea.", "The Seine flows through Paris.", "Paris."], [0.0, 1.0, 0.5]
    )
    choice, reasoning, well_formed = parse_setwise(reply, 3)
    assert choice == 1 and well_formed and "Paris" in reasoning and "river" not in reasoning.split("covers")[0]
    assert parse_setwise(warmup_reply("q", ["a", "b"], [0.5, 0.5]), 2)[0] == 0  # ties: the first
    config = RankR1Config(datasets=(), output="unused", passage_tokens=16, query_tokens=12, set_size=3)
    rows = warmup_rows(_pairs(), tiny_llm.tokenizer, config)
    prompts = setwise_rows(_pairs(), tiny_llm.tokenizer, config)
    assert [r["prompt"] for r in rows] == [p["prompt"] for p in prompts]  # the same sets GRPO sees
    for row, prompt in zip(rows, prompts, strict=True):
        choice, _, ok = parse_setwise(row["reply"], len(prompt["labels"]))
        assert ok and prompt["labels"][choice] == max(prompt["labels"])
    ids, start = encode_example(tiny_llm.tokenizer, rows[0]["prompt"], rows[0]["reply"])
    assert tiny_llm.tokenizer.decode(ids[start:]).startswith("<think>")


def test_the_supervised_warm_up_trains_the_adapter_on_the_reply(tiny_causal_lm: Path) -> None:
    # The tiny random model's head is too weak for LoRA to make it write the format (its logits stay near uniform);
    # that the warm-up teaches SmolLM2 the format is measured on the real model (docs/finetune.md). Here: the loss
    # on the reply falls and only the adapter changes.
    from peft import get_peft_model

    llm = TransformersLLM(str(tiny_causal_lm), repeat_penalty=1.0)
    config = RankR1Config(datasets=(), output="unused", passage_tokens=16, query_tokens=12, set_size=3)
    rows = warmup_rows(_pairs(), llm.tokenizer, config)[:1]
    torch.manual_seed(0)
    model = get_peft_model(llm.model, lora_config(8, 16, 0.0))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    report = run_sft(model, llm.tokenizer, rows, SFTSettings(steps=20, batch_size=1, lr=3e-2), progress=False)
    losses = report["loss_history"]
    assert report["steps"] == 20 and report["examples"] == 1 and len(losses) == 20
    assert losses[-1] < losses[0] - 0.1, losses
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert any(float(p.abs().sum()) > 0 for n, p in model.named_parameters() if "lora_B" in n)
    with pytest.raises(InputError, match="at least one example"):
        run_sft(model, llm.tokenizer, [], SFTSettings(steps=1))


def test_the_cli_table_ends_with_the_random_order_level() -> None:
    from hopmem.app.finetune_cli import rank_r1_rows

    base = {"loss": 1.3, "pairwise_accuracy": 0.31, "mrr": 0.45, "pairs": 83, "valid_answer_rate": 0.0}
    warm = {**base, "pairwise_accuracy": 0.41, "valid_answer_rate": 1.0}
    chance = {"pairwise_accuracy": 0.5, "mrr": 0.52, "ndcg@10": 0.6, "pairs": 83, "draws": 2000}
    report = {"dev_before": base, "dev_after_sft": warm, "dev_after": warm, "dev_chance": chance}
    rows, valid = rank_r1_rows(report)
    assert [name for name, _ in rows] == ["base", "after the warm-up", "trained", "a random order (mean)"]
    assert rows[-1][1]["loss"] is None and rows[-1][1]["pairwise_accuracy"] == 0.5
    assert valid == "0.0 -> 1.0 -> 1.0"  # the random order names no passage: not a rate of its own
    older = {"dev_before": base, "dev_after": warm}  # a report written before the chance level was kept
    assert [name for name, _ in rank_r1_rows(older)[0]] == ["base", "trained"]
