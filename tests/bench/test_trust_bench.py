"""``hopmem bench trust``: the falsifier, the report's shape on a small real-text scenario, and the LTR half."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hopmem.bench.trust_bench import (
    METRICS,
    TrustScenario,
    _ltr_dataset,
    _run_scenario,
    build_facts,
    falsify,
    run_trust_bench,
)
from hopmem.memory.trust.contradiction import contradiction
from hopmem.settings import get_settings


def test_a_false_version_changes_exactly_one_thing_and_reads_as_a_contradiction() -> None:
    rng = random.Random(0)
    number = falsify("The tunnel reached a speed of 35 metres per second in the test.", ["Paris"], rng)
    assert number is not None and number[2] == "number" and number[1] == "35"
    assert contradiction(number[0], "The tunnel reached a speed of 35 metres per second in the test.") == "numbers"
    name = falsify("The bridge was designed by engineers from Glasgow in the north.", ["Leeds", "Glasgow"], rng)
    assert name is not None and name[0] == "The bridge was designed by engineers from Leeds in the north."
    negation = falsify("the boundary layer is thin near the leading edge .", ["Leeds"], rng)
    assert negation is not None and negation[0] == "the boundary layer is not thin near the leading edge ."
    assert falsify("only lowercase words here without any verb", ["Leeds"], rng) is None


def test_the_report_has_the_issue_shape_and_the_defence_helps(shared_data: Path) -> None:
    scenario = TrustScenario(facts=24, poison=6, sleeper_honest=6, sleeper_poison=3, review_every=6, reviews=4)
    settings = get_settings(data_dir=shared_data / "unused")
    report = run_trust_bench(
        settings=settings, data_root=shared_data, seeds=[0, 1], scenario=scenario, ltr_datasets=(), progress=False
    )
    assert report["seeds"] == [0, 1] and report["params"]["facts"] == 24 and report["params"]["seeds"] == [0, 1]
    for side in ("defended", "undefended"):
        for key in METRICS:
            assert key in report[side] and len(report[side][f"{key}_per_seed"]) == 2
    assert set(report["ltr"]) >= {"ndcg@5_off", "ndcg@5_on"}
    on, off = report["defended"], report["undefended"]
    assert on["poisoned_top5_rate"] < off["poisoned_top5_rate"]
    assert off["false_quarantine_rate"] == 0.0  # nothing is quarantined without the gate
    assert all(run["counts"]["quarantined"] == 0 for run in off["runs"])
    assert 0.0 <= on["false_quarantine_rate"] <= 1.0
    assert on["trust_gap"] > 0.0
    assert report["machine"] and report["git_revision"] and "data" in report
    assert not (shared_data / "unused").exists()  # every store lived in a temporary folder


def test_the_users_quarantine_review_rejects_the_poison_it_holds(shared_data: Path, tmp_path: Path) -> None:
    small = {"facts": 24, "poison": 6, "sleeper_honest": 6, "sleeper_poison": 3, "review_every": 6, "reviews": 4}
    facts = build_facts(shared_data, 30, random.Random("facts-0"))
    settings = get_settings(data_dir=tmp_path / "unused")
    runs = {
        q: _run_scenario(settings, TrustScenario(**small, quarantine_review=q), facts, 0, defended=True)
        for q in (0.0, 1.0)
    }
    without, each_round = runs[0.0]["counts"], runs[1.0]["counts"]
    assert without["approved_on_review"] == without["rejected_on_review"] == 0
    assert each_round["rejected_on_review"] > 0
    assert each_round["quarantined"] < without["quarantined"]  # what was rejected is gone, not just hidden
    attackers = {q: r["trust"]["poisoner"] + r["trust"].get("sleeper", 1.0) for q, r in runs.items()}
    assert attackers[1.0] <= attackers[0.0]


@pytest.mark.slow
def test_learning_to_rank_half_reports_both_ndcgs(small_beir: Path, tmp_path: Path) -> None:
    result = _ltr_dataset(get_settings(data_dir=tmp_path), small_beir, "test", [0], 20, 0.9, 0.3)
    (seed,) = result["per_seed"]
    assert seed["train_queries"] == 10 and seed["test_queries"] == 10
    assert 0.0 <= result["ndcg@5_off"] <= 1.0 and 0.0 <= result["ndcg@5_on"] <= 1.0
