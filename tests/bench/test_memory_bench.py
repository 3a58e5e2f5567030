"""The memory benchmark at a tiny N: the report has the promised keys and its numbers are plausible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hopmem.bench.memory_bench import TARGETS, _targets, run_memory_bench
from hopmem.settings import get_settings

PERCENTILES = {"p50", "p95", "p99"}


def test_memory_bench_report_keys_and_values(shared_data: Path) -> None:
    report = run_memory_bench(120, settings=get_settings(), data_root=shared_data, queries=15, progress=False)
    assert {"n", "lexical", "dense", "hybrid", "query_embedding", "ingest_per_s"} <= set(report)
    extra = {"dense_search_only", "hybrid_search_only", "targets", "vector_backend", "embedder", "machine"}
    assert extra | {"git_revision", "command", "data", "seed"} <= set(report)
    assert report["n"] == 120 and report["stored"] == {"memories": 120, "vectors": 120}
    for key in ("lexical", "dense", "hybrid", "query_embedding", "dense_search_only", "hybrid_search_only"):
        row = report[key]
        assert set(row) == PERCENTILES
        assert 0 < row["p50"] <= row["p95"] <= row["p99"]
    assert report["ingest_per_s"] > 0 and report["ingest"]["added"] == 120
    assert report["ingest"]["embed_s"] is not None and 0 < report["ingest"]["embed_s"] <= report["ingest"]["seconds"]
    assert report["targets"] == {}  # no target applies at n=120
    assert report["data"]["query_source"]["kind"] == "beir-queries"
    assert set(report["data"]["corpora"]) == {"cranfield", "hotpotqa", "2wiki-corpus"}
    assert report["vector_backend"] == "exact" and report["embedder"]["name"] == "all-MiniLM-L6-v2"


@pytest.mark.parametrize(
    ("n", "expected"),
    [(10_000, {"hybrid_p50_at_10000"}), (100_000, {"hybrid_p50_at_100000", "lexical_p50_at_100000"})],
)
def test_targets_apply_at_their_scale(n: int, expected: set[str]) -> None:
    fake = {mode: {"p50": 5.0} for mode in ("lexical", "hybrid", "hybrid_search_only")}
    targets = _targets(n, fake)
    assert set(targets) == expected
    for name, entry in targets.items():
        assert set(entry) >= {"target_ms", "measured_ms", "met"}
        assert entry["met"] == (entry["measured_ms"] <= entry["target_ms"])
        assert any(name == f"{m}_p50_at_{s}" and entry["target_ms"] == t for m, s, t in TARGETS)


def test_a_kept_store_is_reused_resumed_and_guarded(shared_data: Path, tmp_path: Path) -> None:
    from hopmem.memory.errors import InputError

    folder = tmp_path / "bench-store"
    config = get_settings()

    def run(n: int, seed: int = 0) -> dict[str, Any]:
        return run_memory_bench(
            n, settings=config, data_root=shared_data, queries=5, progress=False, seed=seed, store_dir=folder
        )

    first = run(40)
    assert first["store"] == {"kept": True, "reused": 0} and first["ingest"]["memories"] == 40
    assert (folder / "hopmem.sqlite").is_file()

    again = run(40)  # nothing to ingest: the latencies are measured on the kept store
    assert again["store"]["reused"] == 40
    assert again["ingest"] is None and again["ingest_per_s"] is None and "ingest" not in again["cpu"]
    assert again["stored"] == {"memories": 40, "vectors": 40}
    assert again["lexical"]["p50"] > 0

    grown = run(55)  # a larger n continues where the store stops (as a run cut short resumes)
    assert grown["store"]["reused"] == 40 and grown["ingest"]["memories"] == 15
    assert grown["stored"]["memories"] == 55
    assert (
        grown["data"]["memories_sha256"]
        == run_memory_bench(55, settings=config, data_root=shared_data, queries=5, progress=False)["data"][
            "memories_sha256"
        ]
    )

    for n, seed in ((30, 0), (55, 1)):  # fewer memories than stored, or another set: refused, nothing written
        with pytest.raises(InputError, match="not this benchmark's"):
            run(n, seed)
    assert run(55)["stored"]["memories"] == 55


def test_lexical_only_stores_no_vectors_and_times_lexical_search(shared_data: Path, tmp_path: Path) -> None:
    from hopmem.memory.errors import InputError

    folder = tmp_path / "text-only"
    config = get_settings()
    report = run_memory_bench(
        300, settings=config, data_root=shared_data, queries=8, progress=False, store_dir=folder, lexical_only=True
    )
    assert report["lexical_only"] is True and report["embedder"] is None
    assert report["stored"] == {"memories": 300, "vectors": 0}
    assert report["ingest"]["text_only"] is True and report["ingest"]["added"] == 300
    assert set(report["lexical"]) == PERCENTILES and report["lexical"]["p50"] > 0
    for key in ("dense", "hybrid", "query_embedding", "dense_search_only", "hybrid_search_only"):
        assert report[key] is None
    assert report["search_settings"]["lexical_backend"] == "index"
    assert report["timings_s"]["lexical_index_build"] >= 0
    with pytest.raises(InputError, match="without vectors"):  # a text-only store cannot serve the full benchmark
        run_memory_bench(300, settings=config, data_root=shared_data, queries=5, progress=False, store_dir=folder)
