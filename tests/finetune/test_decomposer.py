"""The query decomposer's pieces on small real components: the reward over a tiny real memory (hybrid search, RSF),
the curriculum measured from whole-question recall, the tuned planner loading an adapter, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hopmem.finetune.decomposer_data import DecomposerQuestion, assign_stages, curriculum, stage_of
from hopmem.finetune.decomposer_reward import PlanEnvironment, RewardWeights, parse_plan
from tests.finetune.decomposer_corpus import plan_environment, write_beir

QUESTION = "Which animal lives in more countries, the aardvark or the zebra?"


def _plan(mode: str, queries: list[str]) -> str:
    """A rollout as the model writes it: the plan's JSON after the forced '{"'."""
    return json.dumps({"mode": mode, "queries": queries})[2:]


@pytest.fixture(scope="module")
def tiny_beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    query = {"_id": "q1", "text": QUESTION, "metadata": {"supporting": ["aard", "zeb"], "answers": ["zebra"]}}
    return write_beir(tmp_path_factory.mktemp("tiny-beir"), [query], [("q1", "aard"), ("q1", "zeb")])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanEnvironment]:
    """Hybrid search over the tiny corpus; each search returns only its best passage (depth 1), so what a plan finds
    depends on its queries."""
    yield from plan_environment(tmp_path_factory.mktemp("cache"), RewardWeights(depth=1, search_cost=0.05), deep_k=5)


def test_a_plan_that_finds_both_passages_earns_more_than_one_that_finds_one(
    env: PlanEnvironment, tiny_beir: Path
) -> None:
    both = env.score(_plan("parallel", ["aardvark burrowing mammal", "zebra striped coats"]), QUESTION, str(tiny_beir),
                     ["aard", "zeb"])  # fmt: skip
    whole = env.score(_plan("whole", [QUESTION]), QUESTION, str(tiny_beir), ["aard", "zeb"])
    assert both.valid and whole.valid
    assert both.recall == 1.0 and whole.recall == 0.5  # one search of depth 1 finds one of the two
    assert both.searches == 3 and whole.searches == 1  # the question itself, then each sub-query
    assert both.reward > whole.reward


def test_each_extra_search_costs_and_invalid_plans_earn_only_the_format_penalty(
    env: PlanEnvironment, tiny_beir: Path
) -> None:
    w = env.weights
    two = env.score(_plan("parallel", ["aardvark mammal", "zebra coats"]), QUESTION, str(tiny_beir), ["aard", "zeb"])
    three = env.score(
        _plan("parallel", ["aardvark mammal", "zebra coats", "zebra Africa"]), QUESTION, str(tiny_beir), ["aard", "zeb"]
    )
    assert two.recall == three.recall == 1.0
    assert three.searches == two.searches + 1
    assert three.reward == pytest.approx(two.reward - w.search_cost)
    assert two.reward == pytest.approx(1.0 - w.search_cost * (two.searches - 1) + w.valid)
    for bad in ('mode": "parallel", "queries": ["aardvark"', "not json at all", _plan("parallel", ["x", "y"])):
        score = env.score(bad, QUESTION, str(tiny_beir), ["aard", "zeb"])
        assert not score.valid and score.reward == w.invalid and score.searches == 0


def test_a_chain_fills_its_placeholder_and_parses_as_the_agent_reads_it(env: PlanEnvironment, tiny_beir: Path) -> None:
    mode, queries = parse_plan(_plan("sequential", [QUESTION, "{1} striped coats"]), QUESTION, 3)
    assert mode == "sequential" and queries[1] == "{1} striped coats"
    score = env.score(_plan("sequential", [QUESTION, "{1} striped coats"]), QUESTION, str(tiny_beir), ["aard", "zeb"])
    assert score.valid and score.searches >= 2


def test_curriculum_stages_come_from_measured_whole_question_recall(env: PlanEnvironment, tiny_beir: Path) -> None:
    assert stage_of(1.0, 1.0) == "single" and stage_of(0.5, 1.0) == "easy" and stage_of(0.5, 0.5) == "hard"
    root = str(tiny_beir)
    questions = [
        DecomposerQuestion("a", "aardvark burrowing mammal that eats ants", ["aard"], root),
        DecomposerQuestion("b", QUESTION, ["aard", "zeb"], root),
        DecomposerQuestion("c", QUESTION, ["aard", "not-in-the-corpus"], root),
    ]
    # cut at 1 (one search "suffices" only when its best passage is the one needed), deeper cut at 5
    shallow = PlanEnvironment(
        env.embedder, cache_dir=env.cache_dir, chunk_size=env.chunk_size, chunk_overlap=env.chunk_overlap,
        weights=RewardWeights(k=1), deep_k=5,
    )  # fmt: skip
    assign_stages(questions, lambda q: shallow.whole_recall(q.dataset, q.text, q.supporting))
    shallow.close()
    assert [q.stage for q in questions] == ["single", "easy", "hard"]
    assert questions[1].whole_recall == {"k": 0.5, "deep": 1.0}
    assert {q.id for q in curriculum(questions, 1, seed=0)} == {"a", "b"}
    assert {q.id for q in curriculum(questions, 2, seed=0)} == {"a", "b", "c"}


def test_the_cli_documents_the_command() -> None:
    from tests.conftest import run_hopmem

    result = run_hopmem("finetune", "decomposer", "--help")
    assert result.returncode == 0, result.stderr
    assert "--stage1-steps" in result.stdout and "--search-cost" in result.stdout


def test_the_shipped_adapter_carries_its_card_record_curve_and_disjoint_splits() -> None:
    from hopmem.agents.tuned_planner import base_model_of, find_decomposer, packaged_decomposer_dir
    from hopmem.finetune.training_run import TrainingRun

    folder = packaged_decomposer_dir()
    assert find_decomposer(str(folder), folder) == folder and base_model_of(folder) == "SmolLM2-135M-Instruct"
    run = TrainingRun.load(folder)
    assert run.recipe == "decomposer"
    assert {"stage1 GRPO reward", "stage2 GRPO reward"} <= set(run.curves())
    assert (folder / "reward_curve.png").stat().st_size > 0 and "## Held-out questions" in (
        folder / "README.md"
    ).read_text()
    data = json.loads((folder / "data.json").read_text())
    assert data["train_ids"] and data["holdout_ids"] and not set(data["train_ids"]) & set(data["holdout_ids"])
    assert set(data["stages"].values()) <= {"single", "easy", "hard"}
    shipped = (folder / "metrics.json").read_text() + (folder / "README.md").read_text()
    assert str(Path.home()) not in shipped and '"/' not in shipped  # no path of the training machine ships
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["r"] <= 16 and set(config["target_modules"]) <= {"q_proj", "k_proj", "v_proj", "o_proj"}
