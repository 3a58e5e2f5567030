"""Citations point only at evidence the answer step was given."""

from __future__ import annotations

from hopmem.agents.citations import attribute_citations, cited_numbers, strip_invalid_markers
from hopmem.agents.extractive import extractive_answer

PASSAGES = [
    {"text": "The waggle dance tells bees the direction of flowers relative to the sun."},
    {"text": "Spring tides happen when the Sun, Moon and Earth line up at new and full moon."},
]


def test_cited_numbers_keeps_order_and_drops_out_of_range() -> None:
    assert cited_numbers("Tides [2] and bees [1, 2] and [9].", 2) == [2, 1]
    assert cited_numbers("no markers", 2) == []


def test_strip_invalid_markers_removes_citations_of_unseen_evidence() -> None:
    assert strip_invalid_markers("Bees dance [1][7].", 2) == "Bees dance [1]."
    assert strip_invalid_markers("Made up [3, 1].", 2) == "Made up [1]."
    assert strip_invalid_markers("Only fiction [5].", 2) == "Only fiction."


def test_attribution_cites_the_overlapping_passage_only() -> None:
    text = attribute_citations("Bees use the waggle dance to show direction. Nothing else matters here.", PASSAGES)
    assert text.startswith("Bees use the waggle dance to show direction [1].")
    assert cited_numbers(text, 2) == [1]


def test_extractive_answer_picks_the_matching_sentence_and_cites_it() -> None:
    answer = extractive_answer("When do spring tides happen?", PASSAGES)
    assert answer.endswith("[2]")
    assert "Spring tides" in answer
