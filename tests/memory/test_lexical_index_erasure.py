"""Erasure leaves no trace in the in-process lexical index (the idea of test_erasure_complete.py, for this index).

Each memory carries a unique marker word. After ``Memory.erase`` the index of the erasing process and that of
another process-like reader (its own connection) must hold no term, no id and no cached query word of the erased
memory; the kept memory's marker, scanned the same way, must still be found (a scan that sees nothing cannot pass).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hopmem.memory.engine import MemoryEngine
from hopmem.memory.lexical_index import LexicalIndex
from hopmem.settings import get_settings
from tests.memory.engines import open_engine

TENANT = "acme"


def _marker(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:12]


def _traces(index: LexicalIndex, marker: str, memory_id: int) -> dict[str, bool]:
    """Where the index holds ``marker`` (its first 12 characters: porter stemming may trim the end) or the id."""
    needle = marker[:12]
    return {
        "terms": any(t.startswith(needle) for t in index.terms()),
        "ids": memory_id in index.ids(TENANT),
        "query words": any(w.startswith(needle) for w in index.cached_words()),
    }


@pytest.fixture()
def memories(tmp_path: Path) -> Iterator[tuple[MemoryEngine, MemoryEngine]]:
    settings = get_settings(data_dir=tmp_path / "data", llm_backend="none")
    with open_engine(settings, tenant=TENANT) as writer, open_engine(settings, tenant=TENANT) as reader:
        yield writer, reader


@pytest.mark.parametrize("selector", ["ids", "tag", "everything"])
def test_erased_text_leaves_the_lexical_index(memories: tuple[MemoryEngine, MemoryEngine], selector: str) -> None:
    writer, reader = memories
    erased, kept = _marker("zyxqu"), _marker("wvkmo")
    target = writer.add(f"The vault code for the north gate is {erased} today.", title=f"vault {erased}", tags=["x"])
    other = writer.add(f"The shed key hides under the blue pot, tagged {kept}.", tags=["y"])
    indexes = [writer.store.lexical_index, reader.store.lexical_index]
    for index in indexes:
        index.refresh()  # built now, not in the background, so that the searches below go through the index
    for memory in (writer, reader):  # both indexes are built and have looked the markers up as query words
        assert [r.id for r in memory.search(f"vault {erased}", mode="lexical")] == [target.id]
        assert [r.id for r in memory.search(kept, mode="lexical")] == [other.id]
    for index in indexes:
        assert all(_traces(index, erased, target.id).values())
        assert all(_traces(index, kept, other.id).values())

    if selector == "ids":
        writer.erase([target.id])
    elif selector == "tag":
        writer.erase(tags=["x"])
    else:
        writer.erase(everything=True)

    # the eraser's own index dropped the text during the erase, before any search
    assert writer.store.lexical_index.builds == 1
    for index in indexes:
        assert _traces(index, erased, target.id) == {"terms": False, "ids": False, "query words": False}
        if selector != "everything":
            assert _traces(index, kept, other.id)["terms"] and _traces(index, kept, other.id)["ids"]
    assert reader.search(f"vault {erased}", mode="lexical") == []
    if selector != "everything":
        assert [r.id for r in reader.search(kept, mode="lexical")] == [other.id]
    for index in indexes:
        assert index.builds == 1 and index.failed is None  # caught up incrementally, not rebuilt
