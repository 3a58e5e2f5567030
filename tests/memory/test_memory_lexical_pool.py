"""Lexical search ranks a pool of the whole index first; its answers must equal the exhaustive tenant-filtered bm25."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hopmem.memory.records import MemoryInput, SearchFilter
from hopmem.memory.store import MemoryStore

WORDS = [
    "wing",
    "sweep",
    "shock",
    "boundary",
    "layer",
    "flutter",
    "heat",
    "panel",
    "cylinder",
    "buckling",
    "pressure",
    "vortex",
    "nozzle",
]


def _exhaustive(store: MemoryStore, tenant: str, query: str, k: int, filters: SearchFilter | None) -> list[int]:
    from hopmem.memory.fts import build_match_query
    from hopmem.memory.sql_filters import filter_sql

    where, params = filter_sql(filters)
    rows = store.conn.execute(
        "SELECT m.id FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid"
        f" WHERE memories_fts MATCH ? AND m.tenant = ?{where} ORDER BY bm25(memories_fts, 2.0, 1.0), m.id LIMIT ?",
        (build_match_query(query), tenant, *params, k),
    ).fetchall()
    return [int(r[0]) for r in rows]


@pytest.fixture()
def crowded(tmp_path: Path) -> MemoryStore:
    """Tenant 'big' holds 600 texts dense in the query words; tenant 'small' holds 30 sparser ones."""
    rng = random.Random(7)
    store = MemoryStore(tmp_path / "pool.sqlite", lexical_pool_factor=2)
    big = [MemoryInput(" ".join(rng.choices(WORDS, k=12)) + f" b{i}", tags=("t",)) for i in range(600)]
    small = [
        MemoryInput(" ".join(rng.choices(WORDS, k=3)) + f" filler text here s{i}", tags=("odd",) if i % 2 else ())
        for i in range(30)
    ]
    store.add_memories("big", big, None, embedder=None)
    store.add_memories("small", small, None, embedder=None)
    return store


@pytest.mark.parametrize("tenant", ["big", "small"])
@pytest.mark.parametrize("k", [1, 5, 20])
@pytest.mark.parametrize("filters", [None, SearchFilter(tags=("odd",))], ids=["no filter", "tag filter"])
def test_pooled_lexical_search_equals_exhaustive(
    crowded: MemoryStore, tenant: str, k: int, filters: SearchFilter | None
) -> None:
    for query in ("wing shock", "vortex nozzle pressure", "panel"):
        got = [h.memory_id for h in crowded.search_lexical(tenant, query, k, filters=filters)]
        assert got == _exhaustive(crowded, tenant, query, k, filters)
        if tenant == "small":
            assert got  # the small tenant is outscored by the big one: only the fallback finds these
