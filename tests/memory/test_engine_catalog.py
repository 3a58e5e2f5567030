"""The engine's catalogue for browsing faces: browse without a query (filters, trust bounds), sources with chunk
counts, and erase_source through the one erase path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hopmem.memory.engine import MemoryEngine
from hopmem.memory.errors import InputError
from hopmem.settings import get_settings
from tests.memory.engines import open_engine


@pytest.fixture()
def memory(tmp_path: Path) -> Iterator[MemoryEngine]:
    with open_engine(get_settings(data_dir=tmp_path / "data"), tenant="t1") as opened:
        yield opened


def test_browse_lists_newest_first_with_filters_and_trust(memory: MemoryEngine) -> None:
    mine = memory.add("The user's own note about ferns.")
    scout = memory.add("Scout says the lake is frozen.", agent="scout", source_class="agent")
    other = memory.add("Critic says the lake is warm.", agent="critic", source_class="agent")
    listed = memory.browse()
    assert [r.id for r, _ in listed] == [other.id, scout.id, mine.id]
    assert [r.id for r, _ in memory.browse(agent="scout")] == [scout.id]
    assert [r.id for r, _ in memory.browse(source_class="user")] == [mine.id]
    assert [r.id for r, _ in memory.browse(limit=1)] == [other.id]
    for _ in range(3):
        memory.feedback(other.id, "down")
    trusts = dict((r.id, t) for r, t in memory.browse())
    assert trusts[other.id] < trusts[scout.id] <= trusts[mine.id]
    middle = (trusts[other.id] + trusts[scout.id]) / 2  # trust decays with time: bound between the two values
    assert [r.id for r, _ in memory.browse(max_trust=middle)] == [other.id]
    assert [r.id for r, _ in memory.browse(min_trust=middle)] == [scout.id, mine.id]
    assert memory.browse(since=scout.created_at, until=scout.created_at)[0][0].id == scout.id
    with pytest.raises(InputError, match="limit"):
        memory.browse(limit=0)
    with pytest.raises(InputError, match="min_trust"):
        memory.browse(min_trust="high")  # type: ignore[arg-type]


def test_browse_hides_quarantined_and_other_tenants(memory: MemoryEngine, tmp_path: Path) -> None:
    memory.add("a note of tenant one")
    with open_engine(get_settings(data_dir=tmp_path / "data"), tenant="t2") as other:
        assert other.browse() == []
    with open_engine(get_settings(data_dir=tmp_path / "data", trust_threshold=0.9), tenant="t1") as strict:
        held = strict.add("an unvetted claim", agent="newcomer", source_class="agent")
        assert held.quarantined
    assert held.id not in [r.id for r, _ in memory.browse()]


def test_sources_count_chunks_and_erase_source_removes_them_everywhere(memory: MemoryEngine, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\n" + " ".join(f"alpha word{i}." for i in range(400)))
    (docs / "b.txt").write_text("Beta is a short file about beetles.")
    memory.ingest(docs, progress=False)
    listed = {s["title"] or Path(s["source"]).name: s for s in memory.sources()}
    assert len(listed) == 2
    a = next(s for s in memory.sources() if s["source"].endswith("a.md"))
    b = next(s for s in memory.sources() if s["source"].endswith("b.txt"))
    assert a["chunks"] == a["n_chunks"] > 1
    assert b["chunks"] == 1
    chunk_ids = memory.store.document_memory_ids(memory.tenant, a["source"])
    memory.feedback(chunk_ids[0], "up", query="alpha")
    report = memory.erase_source(a["source"])
    assert report.memories == a["chunks"] and report.documents == 1 and report.feedback == 1
    assert [s["source"] for s in memory.sources()] == [b["source"]]
    assert memory.get_many(chunk_ids) == []
    assert not [h for h in memory.search("alpha word1", k=5) if h.id in chunk_ids]
    assert memory.stats()["documents"] == 1
    with pytest.raises(InputError, match="no document"):
        memory.erase_source(a["source"])
    with open_engine(get_settings(data_dir=tmp_path / "data"), tenant="t2") as other:
        assert other.sources() == []
        with pytest.raises(InputError, match="no document"):
            other.erase_source(b["source"])


def test_browse_by_tags_keeps_memories_with_any_of_them(memory: MemoryEngine) -> None:
    red = memory.add("A red note.", tags=["red", "warm"])
    blue = memory.add("A blue note.", tags=["blue"])
    memory.add("An untagged note.")
    assert [r.id for r, _ in memory.browse(tags=["red"])] == [red.id]
    assert [r.id for r, _ in memory.browse(tags=["blue", "warm"])] == [blue.id, red.id]
    assert memory.browse(tags=["green"]) == []
