"""``sqlite_mmap_mb``: the store's connections (the writer and the lexical index's reader) map that much of the file,
and searches through mapped pages give the same results as without the map."""

from __future__ import annotations

from pathlib import Path

import pytest

from hopmem.memory.errors import ConfigError
from hopmem.settings import get_settings
from tests.memory.engines import open_engine

TEXTS = [f"note {i}: the {'red' if i % 2 else 'blue'} kite number {i} flew over hill {i % 7}" for i in range(60)]


def _search_all(data_dir: Path, mmap_mb: int) -> tuple[list[list[int]], int, int]:
    settings = get_settings(data_dir=data_dir, sqlite_mmap_mb=mmap_mb)
    with open_engine(settings, tenant="t") as memory:
        if not memory.stats()["memories"]:
            memory.add_many([{"content": t} for t in TEXTS], progress=False)
        results = [[r.record.id for r in memory.search(q, k=5, mode="lexical")] for q in ("red kite", "hill 3", "kite")]
        memory.store.lexical_index.refresh()
        results += [[r.record.id for r in memory.search(q, k=5, mode="lexical")] for q in ("blue kite", "number 12")]
        writer = int(memory.store.conn.execute("PRAGMA mmap_size").fetchone()[0])
        reader = int(memory.store.lexical_index.conn.execute("PRAGMA mmap_size").fetchone()[0])
    return results, writer, reader


def test_connections_map_what_the_setting_says_and_search_alike(tmp_path: Path) -> None:
    mapped, writer, reader = _search_all(tmp_path / "data", 64)
    assert writer == reader == 64 * 1024 * 1024
    plain, writer, reader = _search_all(tmp_path / "data", 0)
    assert writer == reader == 0
    assert mapped == plain
    assert all(mapped), "every query matches something"


def test_the_setting_refuses_a_negative_size() -> None:
    with pytest.raises(ConfigError, match="HOPMEM_SQLITE_MMAP_MB"):
        get_settings(sqlite_mmap_mb=-1)
