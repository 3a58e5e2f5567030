"""``hopmem bench attack``: the paraphraser, the reviewers' verdicts and a small real run of two attacks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hopmem.bench.attacks import ATTACKS, run_attack_bench
from hopmem.bench.attacks.measure import tainted
from hopmem.bench.attacks.paraphrase import paraphrase
from hopmem.bench.attacks.poisoning import AttackScale
from hopmem.bench.attacks.world import WorldParams, content_words, fact_tokens, open_world, states
from hopmem.bench.trust_bench import Fact
from hopmem.memory.trust.contradiction import contradiction
from hopmem.settings import get_settings

TRUE = "The wind tunnel reached a speed of 35 metres per second during the first test at Glasgow."
FALSE = "The wind tunnel reached a speed of 45 metres per second during the first test at Glasgow."


def test_a_paraphrase_keeps_the_lie_and_shares_fewer_words_with_the_truth() -> None:
    rng = random.Random(0)
    texts = {paraphrase(FALSE, rng) for _ in range(20)}
    assert len(texts) > 1  # several frames
    for text in texts:
        assert "45" in text and "Glasgow" in text and "35" not in text
        shared = content_words(text) & content_words(TRUE)
        assert len(shared) / len(content_words(text) | content_words(TRUE)) < 0.5
    assert contradiction(FALSE, TRUE) == "numbers"


def test_a_reviewer_judges_by_the_token_it_knows_not_by_the_memory_id() -> None:
    fact = Fact("t", TRUE, FALSE, "wind tunnel speed metres per second first test", "number")
    assert fact_tokens(fact) == ("35", "45")
    assert states(paraphrase(FALSE, random.Random(1)), fact) == "false"
    assert states(TRUE, fact) == "true"
    assert states("An unrelated sentence about boundary layers.", fact) is None
    negated = Fact("t", "the layer is thin near the edge.", "the layer is not thin near the edge.", "layer", "negation")
    assert fact_tokens(negated) == (None, "not")
    assert states("Reports say the layer is not thin near the edge.", negated) == "false"
    assert states("the layer is thin near the edge.", negated) == "true"


def test_a_small_real_run_reports_every_figure_and_the_lies_land_without_the_defence(
    shared_data: Path, tmp_path: Path
) -> None:
    settings = get_settings(data_dir=tmp_path / "unused", llm_backend="none")
    world = WorldParams(facts=20, honest=3, review_every=5, reviews=3, answers=False)
    scale = AttackScale(targets=4, sybils=2)
    report = run_attack_bench(
        settings=settings,
        data_root=shared_data,
        seeds=[0],
        attacks=["paraphrase", "injection"],
        world=world,
        scale=scale,
        documents=2,
        progress=False,
    )
    assert set(ATTACKS) >= set(report["attacks"]) == {"paraphrase", "injection"}
    para = report["attacks"]["paraphrase"]
    off = para["undefended_runs"][0]
    assert off["counts"]["attacker_writes"] == 4
    assert off["counts"]["false_visible"] == 4  # nothing holds a lie back with the defence off
    assert off["poisoned_top5"] > 0
    for side in ("defended", "undefended"):
        assert 0.0 <= para[side]["poisoned_top5"] <= 1.0 and 0.0 <= para[side]["honest_quarantined"] <= 1.0
    assert set(para["met"]) >= {"poisoned_top5", "poisoned_top5_separated", "honest_quarantined"}
    injection = report["attacks"]["injection"]
    for run in injection["defended_runs"] + injection["undefended_runs"]:
        assert run["cross_tenant_leaks"] == 0
        assert run["counts"]["documents"] == 2
    assert 0.0 <= report["paraphrase_evasion"]["paraphrase_flagged_rate"] <= 1.0
    assert report["command"] and report["machine"]


class _Draws(random.Random):
    """A review rng whose ``random()`` returns the given draws in order (to fix which verdicts are slips)."""

    def __init__(self, draws: list[float]) -> None:
        super().__init__(0)
        self.draws = list(draws)

    def random(self) -> float:
        return self.draws.pop(0)


def test_the_user_approves_a_held_lie_only_when_judging_the_memory_it_contradicts_false(tmp_path: Path) -> None:
    fact = Fact("Wind tunnel", TRUE, FALSE, "wind tunnel speed metres per second first test", "number")
    settings = get_settings(data_dir=tmp_path / "unused", llm_backend="none")
    params = WorldParams(facts=1, honest=2, error_rate=0.1)
    # draws per held text: the held verdict's slip, then the shown memory's (below 0.1: a slip)
    cases = {"one slip": ([0.0, 0.5], 0, 0), "two slips": ([0.0, 0.0], 1, 0), "no slip": ([0.5], 0, 1)}
    for name, (draws, approved, rejected) in cases.items():
        with open_world(settings, params, [fact], 0, f"review-{name.replace(' ', '-')}", defended=True) as world:
            world.knows[None] = {0}
            world.me.add(TRUE, title=fact.title)  # the user's own memory: a reference any agent is gated against
            held = world.write_false("poisoner", paraphrase(FALSE, random.Random(2)), 0)
            assert held is not None and held.quarantined
            (entry,) = world.me.quarantine()
            assert entry["conflicts_with"]["content"] == TRUE  # the list shows what the held text contradicts
            world.review_rng = _Draws(draws)
            world._review_quarantine()
            assert (world.queue["approved"], world.queue["rejected"]) == (approved, rejected), name


def test_the_user_judges_a_flood_of_near_duplicates_once(tmp_path: Path) -> None:
    fact = Fact("Wind tunnel", TRUE, FALSE, "wind tunnel speed metres per second first test", "number")
    settings = get_settings(data_dir=tmp_path / "unused", llm_backend="none")
    with open_world(settings, WorldParams(facts=1, honest=2), [fact], 0, "review-flood", defended=True) as world:
        world.knows[None] = {0}
        world.me.add(TRUE, title=fact.title)
        for k in range(3):
            assert world.write_false("flooder", f"{FALSE} (note {k + 1})", 0).quarantined
        assert len({entry["group"] for entry in world.me.quarantine()}) == 1
        world.review_rng = _Draws([0.5])  # one verdict (no slip): a second draw would fail
        world._review_quarantine()
        assert world.queue == {"approved": 0, "rejected": 3, "left": 0}
        assert world.me.quarantine() == []


def test_an_answer_that_cites_a_lie_carries_the_poison_on(tmp_path: Path) -> None:
    fact = Fact("Wind tunnel", TRUE, FALSE, "wind tunnel speed metres per second first test", "number")
    settings = get_settings(data_dir=tmp_path / "unused", llm_backend="none")
    with open_world(settings, WorldParams(facts=1, honest=2), [fact], 0, "taint", defended=False) as world:
        lie = world.write_false("poisoner", FALSE, 0)
        carried = world.me.add("The tunnel reached 45 m/s.", metadata={"kind": "answer", "cited": [lie.id]})
        clean = world.me.add(TRUE, metadata={"kind": "answer", "cited": []})
        assert tainted(world) == {lie.id, carried.id}
        assert clean.id not in tainted(world)


@pytest.mark.slow  # two small worlds (about a minute on a quiet CPU); the engine's rule is tested in tests/memory
def test_an_in_place_rewrite_of_true_memories_is_refused_with_the_defence_and_lands_without(
    shared_data: Path, tmp_path: Path
) -> None:
    settings = get_settings(data_dir=tmp_path / "unused", llm_backend="none")
    world = WorldParams(facts=20, honest=3, review_every=5, reviews=3, answers=False)
    report = run_attack_bench(
        settings=settings,
        data_root=shared_data,
        seeds=[0],
        attacks=["rewrite"],
        world=world,
        scale=AttackScale(targets=4),
        progress=False,
    )
    rewrite = report["attacks"]["rewrite"]
    on, off = rewrite["defended_runs"][0], rewrite["undefended_runs"][0]
    assert on["counts"]["attacker_writes"] == off["counts"]["attacker_writes"] > 0
    assert on["counts"]["false_visible"] == 0 and on["poisoned_top5"] == 0.0 and on["writes_to_detect"] == 1
    assert off["counts"]["false_visible"] == off["counts"]["attacker_writes"]  # every edit landed, unchecked
    assert off["poisoned_top5"] > 0 and off["true_missing_top5"] > 0
