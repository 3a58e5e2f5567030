"""The agent's fusion of its evidence lists, pinned on a small real store.

The numbers were recorded before the agent's fusion moved onto the searcher's one fusion path (issue 19): the move
must not change a single id, rank, trust value or score. The store is the bundled sample plus two memories of an
agent whose trust the user's feedback lowered, so trust weighting really re-orders; a hop list adds a memory that
no search found (read from the store) and an id the store does not hold (dropped).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hopmem import Agent, Memory
from hopmem.agents.evidence import fuse_lists
from hopmem.settings import Settings, get_settings

PASSAGE_KEYS = ["id", "title", "text", "score", "source", "external_id", "ranks", "source_class", "agent", "trust"]

# (id, fused trust-weighted score, ranks by list name, trust) as the agent's fusion returned them before the move.
PINNED: dict[str, list[tuple[int, float, dict[str, int], float]]] = {
    "rsf": [
        (2, 1.197917, {"q0": 3, "q1": 1, "treehop:q1": 4}, 1.0),
        (4, 1.0, {"q0": 1}, 1.0),
        (6, 0.26487, {"q1": 2, "treehop:q1": 3}, 0.4),
        (5, 0.21559, {"q0": 2}, 0.4),
        (1, 0.166667, {"q1": 3}, 1.0),
        (3, 0.138021, {"treehop:q1": 2}, 1.0),
    ],
    "rrf": [
        (2, 0.036173, {"q0": 3, "q1": 1, "treehop:q1": 4}, 1.0),
        (4, 0.016393, {"q0": 1}, 1.0),
        (1, 0.015873, {"q1": 3}, 1.0),
        (6, 0.012058, {"q1": 2, "treehop:q1": 3}, 0.4),
        (5, 0.009677, {"q0": 2}, 0.4),
        (3, 0.004032, {"treehop:q1": 2}, 1.0),
    ],
}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return get_settings(data_dir=tmp_path_factory.mktemp("evidence"), llm_backend="none", remember_answers=False)


@pytest.fixture(scope="module")
def memory(settings: Settings, sample_dir: Path) -> Iterator[Memory]:
    memory = Memory(settings)
    assert memory.ingest([sample_dir], progress=False).added == 4
    gossip = Memory(settings, agent="gossip")
    tides = gossip.add(
        "The tides are caused by the moon pulling the ocean, and by the wind over the sea.", title="Gossip on tides"
    )
    lenses = gossip.add("Lighthouses use a Fresnel lens invented by Augustin-Jean Fresnel.", title="Gossip on lenses")
    assert (tides.id, lenses.id) == (5, 6) and not tides.quarantined and not lenses.quarantined
    memory.feedback(tides.id, "down")
    memory.feedback(lenses.id, "down")
    gossip.close()
    yield memory
    memory.close()


def _lists(memory: Memory) -> dict[str, list[dict[str, Any]]]:
    searcher = memory.searcher
    lists: dict[str, list[dict[str, Any]]] = {}
    for n, query in enumerate(["What causes the tides?", "Fresnel lens lighthouse"]):
        lists[f"q{n}"] = [r.to_dict() for r in searcher.search(memory.tenant, query, k=3)]
    lists["empty"] = []
    lists["treehop:q1"] = [{"id": 999, "score": 0.9}, {"id": 3, "score": 0.71}, {"id": 6, "score": 0.55}]
    lists["treehop:q1"].append({"id": 2, "score": 0.42})
    return lists


@pytest.mark.parametrize("fusion", ["rsf", "rrf"])
def test_the_fused_order_scores_ranks_and_trust_are_unchanged(memory: Memory, fusion: str) -> None:
    lists = _lists(memory)
    assert [[p["id"] for p in lists[name]] for name in ("q0", "q1")] == [[4, 5, 2], [2, 6, 1]]
    fused = fuse_lists(memory.searcher, memory.tenant, lists, fusion=fusion, depth=10, weights={"treehop:q1": 0.25})
    assert [p["id"] for p in fused] == [row[0] for row in PINNED[fusion]]  # 999 is not in the store: dropped
    for passage, (_, score, ranks, trust) in zip(fused, PINNED[fusion], strict=True):
        assert list(passage) == PASSAGE_KEYS  # the JSON shape the trace and the citations show
        assert passage["score"] == pytest.approx(score, rel=1e-4, abs=1e-6)
        assert passage["ranks"] == ranks and passage["trust"] == trust
    hop_only = next(p for p in fused if p["id"] == 3)
    assert hop_only["text"] and hop_only["source_class"] == "document"  # read from the store


def test_depth_cuts_the_fused_list(memory: Memory) -> None:
    fused = fuse_lists(memory.searcher, memory.tenant, _lists(memory), fusion="rsf", depth=3)
    assert [p["id"] for p in fused] == [2, 4, 3]  # unweighted, the hop list counts as much as a search
    assert fuse_lists(memory.searcher, memory.tenant, {"q1": []}, fusion="rsf", depth=3) == []


def test_the_agents_fuse_and_rerank_steps_are_unchanged(memory: Memory, settings: Settings) -> None:
    """The whole graph (rules plan, TreeHop, the shipped cross-encoder, trust): the same fused and reranked order."""
    agent = Agent(memory, settings=settings)
    answer = agent.ask("Who was born first, Augustin-Jean Fresnel or Karl von Frisch?")
    steps = {s["step"]: s for s in answer.trace}
    fuse = steps["fuse"]
    assert fuse["lists"] == ["q0", "q1", "q2", "treehop:q1", "treehop:q2"]
    assert fuse["weights"] == {"treehop:q1": 0.25, "treehop:q2": 0.25}
    assert [(p["id"], p["ranks"], p["trust"]) for p in fuse["results"]] == [
        (1, {"q0": 1, "q1": 3, "q2": 1}, 1.0),
        (2, {"q0": 2, "q1": 1, "q2": 2}, 1.0),
        (3, {"q0": 4, "q1": 5, "q2": 3, "treehop:q1": 1}, 1.0),
        (4, {"q0": 5, "q1": 4, "q2": 4, "treehop:q2": 1}, 1.0),
        (6, {"q0": 3, "q1": 2, "q2": 5}, 0.4),
        (5, {"q0": 6, "q1": 6, "q2": 6}, 0.4),
    ]
    expected = [2.30865, 2.143998, 1.045473, 0.988364, 0.586784, 0.15]
    assert [p["score"] for p in fuse["results"]] == pytest.approx(expected, rel=1e-4)
    rerank = steps["rerank"]
    assert rerank["reranker"] == "cross-encoder"
    assert [p["id"] for p in rerank["ranking"]] == [1, 6, 2, 3, 4, 5]  # the distrusted 6 reads best but is weighed
    by_id = {p["id"]: p for p in rerank["ranking"]}
    assert by_id[6]["rerank_score"] == pytest.approx(0.680501, abs=1e-3)
    assert by_id[6]["score"] == pytest.approx(0.4083, abs=1e-3)
    assert [(c["n"], c["id"], c["cited"]) for c in answer.citations] == [(1, 1, True), (2, 6, False), (3, 2, False)]
