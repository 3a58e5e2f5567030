"""The contradiction test of the write gate: a poisoned edit of a fact (a value swapped, a negation, a name swapped)
is caught; honest texts that say more or less about the same thing are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from hopmem.memory.trust.contradiction import contradiction, paraphrase_contradiction
from hopmem.memory.trust.quarantine import review_groups
from hopmem.settings import get_settings
from tests.memory.engines import open_engine

FACT = "The Cranfield wind tunnel reached Mach 3.5 in its first supersonic test run in 1952."
# Sentences of the concurrency benchmark's corpus (hotpotqa, 2wiki): an honest memory and a longer window of it.
SHORT = (
    "Richmond Valley Council (RVC) is a local government area on the Northern Rivers region of north-eastern New South"
    " Wales, Australia."
)
LONG = SHORT + " RVC services an area of 3051 km2 and draws its name from the Richmond River."


@pytest.mark.parametrize(
    ("edited", "why"),
    [
        (FACT.replace("3.5", "1.5"), "numbers"),
        (FACT.replace("1952", "1925"), "numbers"),
        (FACT.replace("reached", "never reached"), "negation"),
        (FACT.replace("Cranfield", "Farnborough"), "names"),
    ],
)
def test_a_poisoned_edit_of_a_fact_is_a_contradiction(edited: str, why: str) -> None:
    assert contradiction(edited, FACT) == why
    assert contradiction(FACT, edited) == why


@pytest.mark.parametrize(
    ("true", "false", "why"),
    [
        ("It is the 5th oldest college football field in the nation.", "It is the 8th oldest college football field"
         " in the nation.", "numbers"),
        ("The line reopened in the late 1940s with one engine.", "The line reopened in the late 1930s with one engine.",
         "numbers"),
        # a name swapped in one of its two places: both texts still hold it once
        ("The Santa Maria River (Mato Grosso do Sul) is a river of Mato Grosso do Sul state in Brazil.",
         "The Santa Maria River (Mato Nikolai do Sul) is a river of Mato Grosso do Sul state in Brazil.", "names"),
    ],
)  # fmt: skip
def test_ordinals_decades_and_a_name_swapped_in_one_place_are_changes(true: str, false: str, why: str) -> None:
    assert contradiction(false, true) == why
    framed = "According to several independent reports reviewed recently, " + false[0].lower() + false[1:]
    assert paraphrase_contradiction(framed, true, 0.8) == why


def test_a_repeated_number_swapped_for_another_is_a_change() -> None:
    married = "From 1959 to 1962, he was married to Sandra Burns, daughter of George Burns and Gracie Allen."
    assert contradiction(married.replace("1962", "1959"), married) == "numbers"


def test_saying_more_or_less_about_the_same_thing_is_no_contradiction() -> None:
    # A number (or a name) on one side only is an added or a missing detail, not a value changed.
    assert contradiction(LONG, SHORT) is None
    assert contradiction(SHORT, LONG) is None
    assert contradiction(FACT.replace(" in 1952", ""), FACT) is None
    assert contradiction(FACT + " It ran for 40 seconds.", FACT) is None
    assert contradiction(FACT, FACT) is None


def test_a_trusted_fact_still_holds_back_its_poisoned_edit_but_not_its_elaboration(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", trust_gate=True)
    with open_engine(settings, tenant="t") as user:
        user.add(SHORT)  # the user's own memory: trust 1.0, a reference for the gate
        user.add(FACT)
        with open_engine(settings, tenant="t", agent="honest") as honest:
            assert not honest.add(LONG).quarantined
        with open_engine(settings, tenant="t", agent="poisoner") as poisoner:
            assert poisoner.add(FACT.replace("3.5", "1.5")).quarantined
        assert user.trust_history("honest") == []
        assert [e["kind"] for e in user.trust_history("poisoner")] == ["contradiction"]


PARAPHRASED = (
    "According to several independent reports reviewed recently, the Cranfield wind tunnel attained Mach 1.5 in its"
    " earliest supersonic test run in 1952."
)


def test_a_paraphrased_lie_escapes_the_lexical_rule_but_not_the_paraphrase_tier() -> None:
    assert contradiction(PARAPHRASED, FACT) is None  # the frame and synonyms leave under half the words shared
    assert paraphrase_contradiction(PARAPHRASED, FACT, 0.8) == "numbers"
    renamed = PARAPHRASED.replace("Mach 1.5", "Mach 3.5").replace("Cranfield", "Cranfield and Farnborough")
    assert paraphrase_contradiction(renamed, FACT, 0.8) is None  # a name added, none swapped: more, not other
    # Two films of the corpus (cosine 0.74): no shared name, but a shared year anchors them to one subject, so the
    # other date reads as a swap; the cost of catching reworded lies about dates (held for review, no trust signal).
    first = "The film was released on October 23, 2015."
    second = (
        "The film had a limited release in theaters and was released on video on demand on May 1, 2015 by Screen Media."
    )
    assert paraphrase_contradiction(first, second, 0.74) == "numbers"
    # A shared small count is no anchor: two films with ten songs each are not one subject.
    assert (
        paraphrase_contradiction(
            "The film has 10 songs and ran 95 minutes.", "The show had 10 songs over 3 acts.", 0.74
        )
        is None
    )
    assert paraphrase_contradiction(SHORT, LONG, 0.9) is None


def test_the_gate_holds_a_paraphrased_lie_for_review_without_a_trust_signal(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", trust_gate=True)
    with open_engine(settings, tenant="t") as user:
        user.add(FACT)
        with open_engine(settings, tenant="t", agent="poisoner") as poisoner:
            held = poisoner.add(PARAPHRASED)
        assert held.quarantined
        assert [q["reason"] for q in user.quarantine()] == [held_reason(user)]
        assert held_reason(user).startswith("may contradict trusted memory")
        assert user.trust_history("poisoner") == []  # weaker evidence: the user's rejection decides
        (entry,) = user.quarantine()
        assert entry["conflicts_with"]["content"] == FACT  # shown beside the held text for the review
    off = get_settings(data_dir=tmp_path / "off", trust_gate=True, trust_semantic_similarity=1.0)
    with open_engine(off, tenant="t") as user:
        user.add(FACT)
        with open_engine(off, tenant="t", agent="poisoner") as poisoner:
            assert not poisoner.add(PARAPHRASED).quarantined


def held_reason(user: object) -> str:
    (held,) = user.quarantine()  # type: ignore[attr-defined]
    return str(held["reason"])


def test_a_low_trust_writers_hold_also_names_the_memory_it_contradicts(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", trust_gate=True, trust_threshold=0.7)  # above the prior
    with open_engine(settings, tenant="t") as user:
        fact = user.add(FACT)
        with open_engine(settings, tenant="t", agent="newcomer") as newcomer:
            newcomer.add(FACT.replace("1952", "1925"))
            newcomer.add("The Cranfield library opened a new reading room for aeronautics students.")
        lie, other = user.quarantine()
        assert "below" in lie["reason"] and f"contradicts trusted memory {fact.id} (numbers)" in lie["reason"]
        assert lie["conflicts_with"] == {"id": fact.id, "content": FACT}
        assert "below" in other["reason"] and other["conflicts_with"] is None


def test_one_agents_near_duplicate_held_writes_are_listed_as_one_review_group(tmp_path: Path) -> None:
    settings = get_settings(data_dir=tmp_path / "data", trust_gate=True, trust_threshold=0.7)  # above the prior
    flood = [
        "The Cranfield wind tunnel opened in 1925 for the college. (note 1)",
        "The Cranfield wind tunnel was opened in 1925 for the college. (note 2)",
        "Reports say the Cranfield wind tunnel opened in 1925 for the college. (note 3)",
    ]
    other = "The Cranfield library opened a new reading room for aeronautics students."
    with open_engine(settings, tenant="t") as user:
        with open_engine(settings, tenant="t", agent="flooder") as flooder:
            ids = [flooder.add(text).id for text in flood] + [flooder.add(other).id]
        with open_engine(settings, tenant="t", agent="second") as second:
            twin = second.add(flood[0].replace("(note 1)", "(note 9)")).id
        groups = {entry["id"]: entry["group"] for entry in user.quarantine()}
        assert groups == {ids[0]: ids[0], ids[1]: ids[0], ids[2]: ids[0], ids[3]: ids[3], twin: twin}
        items = review_groups(user.quarantine())
        assert [[e["id"] for e in item] for item in items] == [ids[:3], [ids[3]], [twin]]
    alone = settings.model_copy(update={"data_dir": tmp_path / "alone", "trust_review_group_similarity": 1.0})
    with open_engine(alone, tenant="t") as user:
        with open_engine(alone, tenant="t", agent="flooder") as flooder:
            for text in flood:
                flooder.add(text)
        assert len({entry["group"] for entry in user.quarantine()}) == 3
