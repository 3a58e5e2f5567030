"""Reciprocal rank fusion and rank-score fusion on hand-made lists with hand-computed scores."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hopmem.memory.errors import InputError
from hopmem.memory.fusion import FUSIONS, fuse, rrf, rsf
from hopmem.memory.records import Hit

Fuse = Callable[..., list[Hit]]


def _hits(*pairs: tuple[int, float]) -> list[Hit]:
    return [Hit(mid, score) for mid, score in pairs]


def _as_pairs(hits: list[Hit]) -> list[tuple[int, float]]:
    return [(h.memory_id, pytest.approx(h.score, abs=1e-12)) for h in hits]


LEXICAL = _hits((1, 10.0), (2, 6.0), (3, 2.0))
DENSE = _hits((3, 0.9), (4, 0.8))


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = rrf({"lexical": LEXICAL, "dense": DENSE}, k=60)
    # 3: 1/63 + 1/61; 1: 1/61; 2 and 4: 1/62 each, the tie broken by the smaller id.
    assert [(h.memory_id, h.score) for h in fused] == _as_pairs(
        [Hit(3, 1 / 63 + 1 / 61), Hit(1, 1 / 61), Hit(2, 1 / 62), Hit(4, 1 / 62)]
    )


def test_rrf_ignores_score_magnitudes() -> None:
    flattened = {"lexical": _hits((1, 1e9), (2, -5.0), (3, 0.0)), "dense": _hits((3, 123.0), (4, 122.9))}
    assert rrf(flattened) == rrf({"lexical": LEXICAL, "dense": DENSE})


def test_rrf_weights_and_k() -> None:
    fused = rrf({"lexical": LEXICAL, "dense": DENSE}, k=1, weights={"dense": 3.0})
    # k=1: lexical gives 1/2, 1/3, 1/4; dense (weight 3) gives 3/2 and 3/3.
    assert [(h.memory_id, h.score) for h in fused] == _as_pairs(
        [Hit(3, 1 / 4 + 3 / 2), Hit(4, 1.0), Hit(1, 1 / 2), Hit(2, 1 / 3)]
    )


def test_rsf_combines_normalised_scores_with_ranks() -> None:
    fused = rsf({"lexical": LEXICAL, "dense": DENSE})
    # lexical: norms 1, 0.5, 0 at ranks 1, 2, 3 -> (1 + 1)/2 = 1, (0.5 + 1/2)/2 = 0.5, (0 + 1/3)/2 = 1/6.
    # dense: norms 1, 0 at ranks 1, 2 -> (1 + 1)/2 = 1, (0 + 1/2)/2 = 0.25.
    assert [(h.memory_id, h.score) for h in fused] == _as_pairs(
        [Hit(3, 1 / 6 + 1.0), Hit(1, 1.0), Hit(2, 0.5), Hit(4, 0.25)]
    )


def test_rsf_rewards_a_clear_score_lead_that_rrf_ignores() -> None:
    # Doc 2 leads lexical by far; doc 1 is a distant second there and leads dense by a hair.
    lists = {"lexical": _hits((2, 100.0), (1, 1.0), (3, 0.0)), "dense": _hits((1, 0.51), (2, 0.50), (3, 0.0))}
    # rrf: docs 1 and 2 both have ranks {1, 2}: a tie, broken by the smaller id.
    by_rank = rrf(lists)
    assert [h.memory_id for h in by_rank] == [1, 2, 3]
    assert by_rank[0].score == pytest.approx(by_rank[1].score)
    # rsf: 2 -> (1 + 1)/2 + (0.50/0.51 + 1/2)/2; 1 -> (0.01 + 1/2)/2 + (1 + 1)/2; 3 -> 1/6 + 1/6.
    fused = rsf(lists)
    assert [(h.memory_id, h.score) for h in fused] == _as_pairs(
        [Hit(2, 1.0 + (0.50 / 0.51 + 0.5) / 2), Hit(1, (0.01 + 0.5) / 2 + 1.0), Hit(3, 1 / 3)]
    )


def test_rsf_falls_back_to_ranks_on_a_flat_list() -> None:
    fused = rsf({"lexical": _hits((5, 1.0), (6, 1.0), (7, 1.0))})
    # Every norm is 1: (1 + 1)/2, (1 + 1/2)/2, (1 + 1/3)/2.
    assert [(h.memory_id, h.score) for h in fused] == _as_pairs([Hit(5, 1.0), Hit(6, 0.75), Hit(7, 2 / 3)])


def test_rsf_weights() -> None:
    fused = rsf({"lexical": LEXICAL, "dense": DENSE}, weights={"lexical": 0.5, "dense": 2.0})
    assert [(h.memory_id, h.score) for h in fused] == _as_pairs(
        [Hit(3, 0.5 / 6 + 2.0), Hit(1, 0.5), Hit(4, 0.5), Hit(2, 0.25)]
    )


@pytest.mark.parametrize("fuse", [rrf, rsf])
def test_empty_input_gives_an_empty_list(fuse: Fuse) -> None:
    assert fuse({}) == []
    assert fuse({"lexical": [], "dense": []}) == []


@pytest.mark.parametrize("fuse", [rrf, rsf])
def test_a_single_list_keeps_its_order(fuse: Fuse) -> None:
    fused = fuse({"dense": DENSE + _hits((9, 0.1))})
    assert [h.memory_id for h in fused] == [3, 4, 9]


@pytest.mark.parametrize("fuse", [rrf, rsf])
def test_a_document_in_both_lists_beats_one_in_a_single_list_at_equal_ranks(fuse: Fuse) -> None:
    # Same score profile in both lists. Doc 1 is first in both; doc 2 and doc 3 are second in one list each.
    fused = fuse({"lexical": _hits((1, 3.0), (2, 2.0)), "dense": _hits((1, 3.0), (3, 2.0))})
    assert [h.memory_id for h in fused] == [1, 2, 3]
    # Doc 4 is first in lexical and second in dense; doc 5 first in dense only; doc 6 second in lexical only.
    fused = fuse({"lexical": _hits((4, 3.0), (6, 2.0)), "dense": _hits((5, 3.0), (4, 2.0))})
    assert [h.memory_id for h in fused] == [4, 5, 6]
    assert fused[0].score > fused[1].score


@settings(max_examples=200, deadline=None)
@given(
    order=st.permutations(list(range(10))),
    other=st.permutations(list(range(10, 20))),
    shared=st.integers(min_value=0, max_value=9),
)
def test_rrf_a_shared_document_beats_every_single_list_document_at_its_rank_or_below(
    order: list[int], other: list[int], shared: int
) -> None:
    # ``order`` is list A; list B is ``other`` with A's document put in at the same position ``shared``.
    doc = order[shared]
    list_b = [*other[:shared], doc, *other[shared + 1 :]]
    fused = rrf({"a": _hits(*((d, 0.0) for d in order)), "b": _hits(*((d, 0.0) for d in list_b))})
    position = [h.memory_id for h in fused].index(doc)
    single_at_or_below = {d for i, d in enumerate(order) if i >= shared and d != doc} | set(list_b[shared + 1 :])
    assert all(position < [h.memory_id for h in fused].index(d) for d in single_at_or_below)
    scores = [h.score for h in fused]
    assert scores == sorted(scores, reverse=True)


def test_fuse_picks_the_method_by_name() -> None:
    lists = {"lexical": LEXICAL, "dense": DENSE}
    weights = {"dense": 0.5}
    assert fuse(lists, method="rrf", k=10, weights=weights) == rrf(lists, k=10, weights=weights)
    assert fuse(lists, method="rsf", weights=weights) == rsf(lists, weights=weights)
    assert FUSIONS == ("rrf", "rsf")
    with pytest.raises(InputError, match="Unknown fusion 'max'"):
        fuse(lists, method="max")
