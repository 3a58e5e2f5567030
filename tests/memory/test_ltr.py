"""Learning to rank from feedback: off below the threshold, learns a preference the retrievers do not have, and is
erased with the behavioural data."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from hopmem.memory.engine import MemoryEngine
from hopmem.settings import get_settings
from tests.memory.engines import open_engine

TOPICS = [
    "lighthouse", "glacier", "volcano", "orchard", "harbour", "meteor", "desert", "canyon",
    "reef", "forest", "tundra", "lagoon", "prairie", "fjord", "savanna",
]  # fmt: skip


@pytest.fixture()
def memory(tmp_path: Path) -> Iterator[MemoryEngine]:
    docs = tmp_path / "docs"
    docs.mkdir()
    for topic in TOPICS:
        (docs / f"{topic}.txt").write_text(
            f"A field guide chapter on the {topic}: how it formed, who studies it and what lives there."
        )
    settings = get_settings(data_dir=tmp_path / "data", ltr_min_feedback=20, ltr_retrain_every=10_000)
    with open_engine(settings, tenant="t") as opened:
        opened.ingest([docs], progress=False)
        for topic in TOPICS:  # a user note that matches the query words better than the guide does
            opened.add(f"{topic} facts: {topic} {topic} notes")
        yield opened


def _query(topic: str) -> str:
    return f"{topic} facts notes"


def _top_is_document(memory: MemoryEngine, topic: str) -> bool:
    return memory.search(_query(topic), k=1)[0].record.source_class == "document"


def _give_feedback(memory: MemoryEngine, topics: list[str]) -> None:
    """The user prefers the guide: up on the document, down on the note, for each training query."""
    for topic in topics:
        for result in memory.search(_query(topic), k=5):
            if result.record.source_class == "document" and topic in result.record.content:
                memory.feedback(result.id, "up", query=_query(topic))
            elif topic in result.record.content:
                memory.feedback(result.id, "down", query=_query(topic))


def test_the_layer_is_off_below_the_threshold_and_learns_above_it(memory: MemoryEngine) -> None:
    train, held_out = TOPICS[:12], TOPICS[12:]
    assert not any(_top_is_document(memory, t) for t in held_out)  # the retrievers prefer the note
    _give_feedback(memory, train[:5])
    assert memory.behaviour.count("t") < 20
    assert memory.train_ranker() is None  # too little feedback: stays off
    assert not any(_top_is_document(memory, t) for t in held_out)

    _give_feedback(memory, train[5:])
    info = memory.train_ranker()
    assert info is not None and info["queries"] == 12 and info["pairs"] >= 12
    assert info["weights"]["src_document"] > 0
    assert all(_top_is_document(memory, t) for t in held_out)  # generalises to queries it had no feedback on

    # A fresh handle on the same files uses the stored layer.
    with MemoryEngine(memory.config, tenant="t") as again:
        assert all(_top_is_document(again, t) for t in held_out)
    # Switched off by the setting, the ranking is the retrievers' again.
    with MemoryEngine(dataclasses.replace(memory.config, ltr_enabled=False), tenant="t") as off:
        assert not any(_top_is_document(off, t) for t in held_out)


def test_the_layer_is_erased_with_the_behavioural_data(memory: MemoryEngine) -> None:
    _give_feedback(memory, TOPICS[:12])
    assert memory.train_ranker() is not None
    assert memory.behaviour.conn.execute("SELECT count(*) FROM ltr_models").fetchone()[0] == 1
    memory.erase(everything=True)
    assert memory.behaviour.conn.execute("SELECT count(*) FROM ltr_models").fetchone()[0] == 0
    assert memory.behaviour.count("t") == 0
    with MemoryEngine(memory.config, tenant="t") as again:
        assert again.train_ranker() is None
