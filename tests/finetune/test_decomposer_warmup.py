"""The decomposer's warm-up on real components: candidate plans scored by the real reward over a tiny real memory
(hybrid search, RSF), the reward-best target and its tie-break, the reserved evaluation questions, the supervised rows
as the tokens inference continues from, and two supervised steps on the real SmolLM2 checkpoint."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from hopmem.agents.planner import MAX_QUERY_CHARS, fit_query, tuned_query_chars
from hopmem.finetune.decomposer_data import DecomposerQuestion, read_questions, reserved_ids, split_holdout
from hopmem.finetune.decomposer_reward import JSON_PREFIX, PlanEnvironment, PlanScore, RewardWeights, parse_plan
from hopmem.finetune.decomposer_warmup import (
    Candidate,
    WarmupSettings,
    WarmupTarget,
    balanced,
    choose_expected,
    choose_target,
    enumerated_candidates,
    enumerated_plans,
    expected_rewards,
    plan_completion,
    question_class,
    run_warmup,
    target_summary,
    warmup_rows,
    warmup_targets,
)
from hopmem.memory.errors import InputError
from tests.finetune.decomposer_corpus import plan_environment, write_beir

COMPARE = "Which animal lives in more countries, the Aardvark or the Zebra?"
SIMPLE = "What does the aardvark eat?"
QUESTIONS = [("q1", COMPARE, ["aard", "zeb"]), ("q2", SIMPLE, ["aard"]), ("q3", "Where do salmon hatch?", ["sal"])]


@pytest.fixture(scope="module")
def tiny_beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    queries = [{"_id": i, "text": t, "metadata": {"supporting": [*s, "oak"]}} for i, t, s in QUESTIONS]
    qrels = [(i, d) for i, _, s in QUESTIONS for d in [*s, "oak"]]
    return write_beir(tmp_path_factory.mktemp("hotpot-tiny"), queries, qrels)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanEnvironment]:
    """Hybrid search over the tiny corpus; each search returns only its best passage (depth 1), so what a plan finds
    depends on its queries."""
    yield from plan_environment(tmp_path_factory.mktemp("cache"), RewardWeights(depth=1, k=2, search_cost=0.05))


def test_candidates_are_whole_rules_and_chain_and_parse_as_the_agent_reads_them() -> None:
    candidates = enumerated_candidates(COMPARE, 3)
    assert [c.source for c in candidates] == ["whole", "rules", "chain"]
    modes = [parse_plan(c.completion, COMPARE, 3)[0] for c in candidates]
    assert modes == ["whole", "parallel", "sequential"]  # the rules split the comparison in parallel
    assert parse_plan(candidates[2].completion, COMPARE, 3)[1] == [COMPARE, "{1} " + COMPARE]
    # one sub-query allowed: no chain, and the rules keep it whole (a duplicate of "whole" is dropped)
    assert [c.source for c in enumerated_candidates(COMPARE, 1)] == ["whole"]


def test_a_long_question_is_chained_whole_within_the_tuned_limit() -> None:
    long = "Which film directed by the man who also wrote the novel " + "about a very long journey " * 6 + "won?"
    assert len(long) > MAX_QUERY_CHARS
    cut = fit_query(long)
    assert len(cut) <= MAX_QUERY_CHARS and long.startswith(cut) and not cut.endswith(" ")
    plans = {source: parse_plan(completion, long, 3) for source, completion in enumerated_plans(long, 3)}
    # the chain (and the rules' own) restates the whole long question: the tuned limit leaves room for it
    assert plans["chain"] == ("sequential", [long, "{1} " + long])
    assert all(len(q) <= tuned_query_chars(long) for _, queries in plans.values() for q in queries)


def test_the_target_is_the_reward_best_plan_and_ties_go_to_fewer_searches_then_whole(
    env: PlanEnvironment, tiny_beir: Path
) -> None:
    root = str(tiny_beir)
    compare = DecomposerQuestion("q1", COMPARE, ["aard", "zeb"], root)
    target = choose_target(env, compare, enumerated_candidates(COMPARE, 3))
    scores = {c.source: c.score for c in target.candidates}
    assert all(s is not None and s.valid for s in scores.values())
    best = max(s.reward for s in scores.values() if s)
    assert target.best.score is not None and target.best.score.reward == best
    # depth 1: the whole question finds one of the two passages; a split into one search per animal finds both
    assert scores["whole"] is not None and scores["whole"].recall == 0.5
    assert target.best.source == "rules" and target.best.score.mode == "parallel" and target.best.score.recall == 1.0
    # a tie on reward and searches goes to the earlier source: two identical whole plans, "whole" listed second
    simple = DecomposerQuestion("q2", SIMPLE, ["aard"], root)
    twins = [
        Candidate("sampled", plan_completion("whole", [SIMPLE])),
        Candidate("whole", plan_completion("whole", ["x"])),
    ]
    assert choose_target(env, simple, twins).best.source == "whole"
    # an invalid sampled plan never wins over a valid one
    target = choose_target(env, simple, [Candidate("sampled", "not json"), *enumerated_candidates(SIMPLE, 3)])
    assert target.best.source == "whole" and target.best.score is not None and target.best.score.recall == 1.0


BRIDGE_A = "What government position was held by the woman who portrayed Corliss Archer in the film Kiss?"
BRIDGE_B = "The arena where the Lewiston Maineiacs played their home games can seat how many people?"


def _scored(question: str, recalls: dict[str, float], cost: float = 0.02) -> list[Candidate]:
    """The enumerated candidates of ``question`` with made-up evidence per source (reward as the plan reward
    computes it: recall - cost per extra search + 0.1)."""
    out = []
    for c in enumerated_candidates(question, 3):
        searches = 1 if c.source == "whole" else 2
        recall = recalls[c.source]
        mode = "whole" if c.source == "whole" else "sequential"
        c.score = PlanScore(recall - cost * (searches - 1) + 0.1, True, mode, [], searches, recall)
        out.append(c)
    return out


def test_expected_ties_go_to_the_kind_that_pays_on_average_for_questions_of_the_same_class() -> None:
    assert question_class(BRIDGE_A, 3) == question_class(BRIDGE_B, 3) == "sequential"
    assert {s for s, _ in enumerated_plans(BRIDGE_A, 3)} == {"whole", "rules", "chain"}
    questions = [DecomposerQuestion("a", BRIDGE_A, ["x"], "d"), DecomposerQuestion("b", BRIDGE_B, ["x"], "d")]
    # a: the chain finds a passage the whole question misses; b: both find the same evidence
    scored = [
        _scored(BRIDGE_A, {"whole": 0.5, "rules": 1.0, "chain": 1.0}),
        _scored(BRIDGE_B, {"whole": 1.0, "rules": 1.0, "chain": 1.0}),
    ]
    means = expected_rewards(questions, scored, 3)
    assert set(means["sequential"]) == {"whole", "sequential"}  # kinds of plan, whatever source wrote them
    assert means["sequential"]["sequential"] > means["sequential"]["whole"]
    assert math.isclose(means["sequential"]["whole"], (0.6 + 1.1) / 2)
    tied = choose_expected(questions[1], scored[1], means, metric="recall@10", max_subqueries=3)
    assert tied.best.score is not None and tied.best.score.mode == "sequential"  # "fewer" would keep b whole
    assert max(scored[1], key=lambda c: c.score.reward if c.score else 0).source == "whole"
    # strictly more evidence always wins, whatever pays on average
    flipped = _scored(BRIDGE_B, {"whole": 1.0, "rules": 0.5, "chain": 0.5})
    assert choose_expected(questions[1], flipped, means, metric="recall@10", max_subqueries=3).best.source == "whole"
    # an invalid plan (the rules' chain of a long question) is no kind of plan: it moves no mean
    broken = _scored(BRIDGE_B, {"whole": 1.0, "rules": 1.0, "chain": 1.0})
    broken[1].score = PlanScore(-0.5, False)
    with_broken = expected_rewards([*questions, questions[1]], [*scored, broken[:2]], 3)
    assert with_broken["sequential"]["sequential"] == means["sequential"]["sequential"]
    # a sampled plan has no kind: with equal evidence it loses to an enumerated one
    sampled = Candidate("sampled", plan_completion("whole", [BRIDGE_B]))
    sampled.score = PlanScore(1.1, True, "whole", [BRIDGE_B], 1, 1.0)
    assert (
        choose_expected(questions[1], [sampled, *scored[1]], means, metric="recall@10", max_subqueries=3).best.source
        != "sampled"
    )


def test_targets_summary_and_rows_for_the_supervised_loop(env: PlanEnvironment, tiny_beir: Path) -> None:
    root = str(tiny_beir)
    questions = [DecomposerQuestion(i, t, s, root) for i, t, s in QUESTIONS]
    targets = warmup_targets(env, questions, [[], ["not json"], []], 3)
    summary = target_summary(targets)
    assert summary["questions"] == 3 and math.isclose(sum(summary["sources"].values()), 1.0, abs_tol=1e-3)
    assert summary["counts"] == {"parallel": 1, "whole": 2} and summary["sampled_valid"] == 0.0
    assert summary["target_recall@10"] >= summary["whole_recall@10"]
    rows = warmup_rows(targets, 3)
    assert rows[0]["prompt"][-1] == {"role": "user", "content": COMPARE}
    assert all(r["reply"].startswith(JSON_PREFIX) and json.loads(r["reply"])["mode"] for r in rows)


def _target(mode: str) -> WarmupTarget:
    q = DecomposerQuestion(mode, "q", ["d"], "")
    return WarmupTarget(q, Candidate("rules", "", PlanScore(1.0, True, mode)))


def test_balanced_repeats_split_targets_up_to_the_share() -> None:
    targets = [_target("whole")] * 8 + [_target("sequential"), _target("parallel")]
    assert balanced(targets, 0.0, seed=0) == targets
    out = balanced(targets, 0.5, seed=0)
    split = [t for t in out if t.best.score is not None and t.best.score.mode != "whole"]
    assert len(out) == 16 and len(split) == 8  # 8 whole stay; the two splits cycle to half of the examples
    assert balanced([_target("whole")] * 3, 0.5, seed=0) == [_target("whole")] * 3  # nothing to repeat


def test_reserved_questions_are_the_first_judged_ones_and_never_train(tiny_beir: Path) -> None:
    folders = [str(tiny_beir)]
    reserved = reserved_ids(folders, ["train"], [f"{tiny_beir.name}=2"])
    assert reserved == {tiny_beir.name: {"split": "train", "first": 2, "ids": ["q1", "q2"]}}
    data = split_holdout(read_questions(folders, ["train"]), holdout=0, max_train=0, seed=0, reserved=reserved)
    assert [q.id for q in data.train] == ["q3"] and data.rule["reserved_questions"] == 2
    assert data.to_dict()["reserved_ids"] == {tiny_beir.name: ["q1", "q2"]}
    for bad in (["nowhere=3"], [f"{tiny_beir.name}:3"]):
        with pytest.raises(InputError):
            reserved_ids(folders, ["train"], bad)


@pytest.fixture(scope="module")
def smollm() -> tuple[object, object]:
    from hopmem.agents.llm.transformers_llm import TransformersLLM
    from hopmem.memory.errors import ModelNotAvailableError

    try:
        llm = TransformersLLM("SmolLM2-135M-Instruct", repeat_penalty=1.0)
    except ModelNotAvailableError as exc:
        pytest.skip(f"SmolLM2-135M-Instruct is not installed here: {exc}")
    if llm.tokenizer.pad_token is None:
        llm.tokenizer.pad_token = llm.tokenizer.eos_token
    return llm.model, llm.tokenizer


def test_a_supervised_row_is_the_inference_prompt_followed_by_the_plan(smollm: tuple[object, object]) -> None:
    """The warm-up trains on exactly the tokens inference continues from: the prompt ending with the forced '{"'."""
    from hopmem.finetune.decomposer_reward import plan_prompt
    from hopmem.finetune.sft import encode_example

    _, tokenizer = smollm
    target = WarmupTarget(
        DecomposerQuestion("q", COMPARE, [], ""), Candidate("chain", plan_completion("sequential", [COMPARE, "{1} x"]))
    )
    row = warmup_rows([target], 3)[0]
    ids, start = encode_example(tokenizer, row["prompt"], row["reply"])
    inference = tokenizer(plan_prompt(tokenizer, COMPARE, 3), add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    assert ids[: len(inference)] == list(inference)  # the prompt + '{"' tokenise the same either way
    assert start == len(inference) - 1  # the loss starts at the forced '{"' token, then covers the plan


def test_two_warmup_steps_train_the_lora_adapter(smollm: tuple[object, object]) -> None:
    import torch
    from peft import get_peft_model

    from hopmem.finetune.grpo import lora_config

    model, tokenizer = smollm
    torch.manual_seed(0)
    peft_model = get_peft_model(model, lora_config(4, 8, 0.0, ("q_proj", "v_proj")))
    targets = [_target("whole")]
    targets[0].best.completion = plan_completion("whole", [SIMPLE])
    targets[0].question.text = SIMPLE
    out = run_warmup(peft_model, tokenizer, targets, WarmupSettings(steps=2, batch_size=1), max_subqueries=3)
    assert out["steps"] == 2 and len(out["loss_history"]) == 2 and all(math.isfinite(v) for v in out["loss_history"])
    lora_b = [p for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert lora_b and any(
        float(p.detach().abs().sum()) > 0 for p in lora_b
    )  # LoRA B starts at zero: the steps moved it
    peft_model.unload()
