"""Memory benchmark: ingest throughput and per-query search latency at N memories, in a fresh temporary store.

What is timed (``time.perf_counter``, one query at a time, after a warm-up that is not recorded):

* ``ingest_per_s``: memories per second through :meth:`Memory.add_many` (wall clock, embedding and SQLite writes
  included, the embedding model already loaded). ``ingest.embed_s`` / ``ingest.write_s`` split that time: the
  embedder is wrapped in a timer, and the write share is the rest.
* ``lexical`` / ``dense`` / ``hybrid``: :meth:`Memory.search` as a user calls it (k=10), the query embedding
  included for dense and hybrid.
* ``query_embedding``: :meth:`HybridSearcher.embed_query` alone.
* Before the timed queries, the first search loads the vector index and starts the lexical index's build, which
  the benchmark waits for (``timings_s.first_search``, ``timings_s.lexical_index_build``): latencies are those
  of a process that has been serving for a while.
* ``dense_search_only`` / ``hybrid_search_only``: :meth:`HybridSearcher.search` given the precomputed
  ``query_vector`` (retrieval, fusion and the row fetch, no embedding).

With ``store_dir`` the store is kept in that folder instead of a temporary one, and a later run with the same
``n`` and ``seed`` reuses it: it ingests only what is missing (a run cut short resumes), after checking that the
stored memories are this benchmark's first ones, in order. ``ingest`` then describes only what this run ingested
(``null`` when it ingested nothing), and ``store.reused`` says how many memories were already there.

``lexical_only`` stores the memories without embeddings (straight into the store, as a bm25 evaluation does:
seconds instead of minutes per 10k) and times lexical search alone: the way to measure the lexical index at 100k
and more without an hour of embedding. Its report has ``null`` for everything that needs vectors.

All latencies are milliseconds: p50, p95 and p99 over the queries. ``cpu`` says, per phase, how many CPU seconds
other processes took meanwhile (see :mod:`hopmem.bench.system`): compare runs only when that is near zero.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from hopmem.bench.corpus import fingerprint, generate_memories, generate_queries, load_corpus
from hopmem.bench.system import CpuMeter
from hopmem.memory.datasets.metrics import percentiles
from hopmem.memory.errors import InputError
from hopmem.memory.run_record import RunRecord

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hopmem.memory.embeddings import Embedder
    from hopmem.memory.hybrid import HybridSearcher
    from hopmem.memory_api import Memory
    from hopmem.settings import Settings

log = logging.getLogger(__name__)

QUANTILES = (50, 95, 99)
SEARCH_K = 10
WARMUP_QUERIES = 10
INGEST_CHUNK = 2048
# (mode, scale n, p50 target in ms): the latency goals this benchmark checks; a goal applies when n equals its scale.
TARGETS: tuple[tuple[str, int, float], ...] = (
    ("hybrid", 10_000, 10.0),
    ("hybrid", 100_000, 25.0),
    ("lexical", 100_000, 2.0),
)


class TimedEmbedder:
    """Wraps an embedder and adds up the seconds spent in :meth:`embed` (to split ingest time into embed/write)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.seconds = 0.0
        self.texts = 0

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> NDArray[np.float32]:
        started = time.perf_counter()
        try:
            return self.inner.embed(texts, show_progress=show_progress)
        finally:
            self.seconds += time.perf_counter() - started
            self.texts += len(texts)


def _time_each(queries: Sequence[str], call: Callable[[int, str], object], *, desc: str, progress: bool) -> list[float]:
    """Milliseconds of ``call(i, query)`` for each query, after :data:`WARMUP_QUERIES` unrecorded calls."""
    for i, query in enumerate(queries[:WARMUP_QUERIES]):
        call(i, query)
    out: list[float] = []
    for i, query in enumerate(tqdm(queries, desc=desc, unit="q", disable=not progress, leave=False)):
        started = time.perf_counter()
        call(i, query)
        out.append((time.perf_counter() - started) * 1000.0)
    return out


def _user_search(memory: Memory, mode: str) -> Callable[[int, str], object]:
    """A timed call: :meth:`Memory.search` as a user makes it (the query embedding included)."""
    return lambda _i, query: memory.search(query, k=SEARCH_K, mode=mode)


def _search_with_vector(
    searcher: HybridSearcher, tenant: str, mode: str, vectors: Sequence[NDArray[np.float32]]
) -> Callable[[int, str], object]:
    """A timed call: :meth:`HybridSearcher.search` given query ``i``'s precomputed vector (no embedding)."""
    return lambda i, query: searcher.search(tenant, query, k=SEARCH_K, mode=mode, query_vector=vectors[i])


def _ingest(memory: Memory, items: list[dict[str, str]], *, progress: bool) -> dict[str, Any]:
    """Add ``items`` in chunks; returns the timings and the stored count. The embedder must already be loaded."""
    inner = memory.embedder
    timer = TimedEmbedder(inner)
    # Memory has no public hook to time its embedder; it reads ``_embedder`` on every write, so a wrapper there sees
    # each batch. If that attribute is ever renamed, the split is reported as unknown rather than wrong.
    memory._embedder = timer
    split_known = memory.embedder is timer
    added = duplicates = 0
    started = time.perf_counter()
    try:
        with tqdm(total=len(items), desc="ingest", unit="mem", disable=not progress) as bar:
            for start in range(0, len(items), INGEST_CHUNK):
                chunk = items[start : start + INGEST_CHUNK]
                for result in memory.add_many(chunk, progress=False):
                    if result.status == "added":
                        added += 1
                    else:
                        duplicates += 1
                bar.update(len(chunk))
        seconds = time.perf_counter() - started
    finally:
        memory._embedder = inner
    embed_s = timer.seconds if split_known and timer.texts else None
    return {
        "memories": len(items),
        "added": added,
        "duplicates": duplicates,
        "seconds": round(seconds, 3),
        "per_s": round(len(items) / seconds, 2) if seconds > 0 else None,
        "embed_s": None if embed_s is None else round(embed_s, 3),
        "write_s": None if embed_s is None else round(seconds - embed_s, 3),
        "embed_per_s": None if not embed_s else round(len(items) / embed_s, 2),
        "chunk": INGEST_CHUNK,
    }


def _stored_prefix(memory: Memory, items: list[dict[str, str]], folder: Path) -> int:
    """How many of ``items`` the store already holds, as its first memories in order (a kept benchmark store).

    Raises:
        InputError: when the store holds anything else (another ``n``/``seed``, other data, or user memories).
    """
    stored = [str(r[0]) for r in memory.store.conn.execute("SELECT content_hash FROM memories ORDER BY id").fetchall()]
    expected = [hashlib.sha256(item["content"].encode("utf-8")).hexdigest() for item in items[: len(stored)]]
    if len(stored) > len(items) or stored != expected:
        raise InputError(
            f"The store in {folder} holds memories that are not this benchmark's (n={len(items)}); "
            "give --store an empty folder or the one an earlier run with the same --n and --seed made."
        )
    return len(stored)


def _ingest_text_only(memory: Memory, items: list[dict[str, str]], *, progress: bool) -> dict[str, Any]:
    """Store ``items`` without embeddings, straight through the store (the lexical-only benchmark)."""
    from hopmem.memory.records import MemoryInput

    added = 0
    started = time.perf_counter()
    with tqdm(total=len(items), desc="ingest (text only)", unit="mem", disable=not progress) as bar:
        for start in range(0, len(items), INGEST_CHUNK):
            chunk = [MemoryInput(i["content"], title=i.get("title", "")) for i in items[start : start + INGEST_CHUNK]]
            added += sum(
                r.status == "added" for r in memory.store.add_memories(memory.tenant, chunk, None, embedder=None)
            )
            bar.update(len(chunk))
    seconds = time.perf_counter() - started
    return {
        "memories": len(items),
        "added": added,
        "duplicates": len(items) - added,
        "seconds": round(seconds, 3),
        "per_s": round(len(items) / seconds, 2) if seconds > 0 else None,
        "embed_s": None,
        "write_s": round(seconds, 3),
        "embed_per_s": None,
        "chunk": INGEST_CHUNK,
        "text_only": True,
    }


def _targets(n: int, results: dict[str, Any]) -> dict[str, Any]:
    """The latency goals that apply at ``n`` (p50 with the query embedding included), each with whether it is met."""
    out: dict[str, Any] = {}
    for mode, scale, target in TARGETS:
        if n != scale or results.get(mode) is None:
            continue
        measured = results[mode]["p50"]
        entry: dict[str, Any] = {"target_ms": target, "measured_ms": measured, "met": bool(measured <= target)}
        if mode == "hybrid":
            entry["search_only_ms"] = results["hybrid_search_only"]["p50"]
        out[f"{mode}_p50_at_{scale}"] = entry
    return out


def run_memory_bench(
    n: int,
    *,
    settings: Settings,
    data_root: Path | str | None = None,
    queries: int = 200,
    progress: bool = True,
    seed: int = 0,
    command: str | None = None,
    store_dir: Path | str | None = None,
    lexical_only: bool = False,
) -> dict[str, Any]:
    """Ingest ``n`` generated memories into a fresh temporary store (or ``store_dir``) and time the search modes.

    Args:
        n: memories to store (all distinct, see :mod:`hopmem.bench.corpus`).
        settings: embedder, vector backend and search settings; its data directory is replaced by a temporary one
            (and a qdrant backend kept in local mode inside it), so no user store is touched.
        data_root: the folder with the corpora (default: ``shared/data`` next to the repository).
        queries: queries timed per mode (BEIR query texts of the corpora).
        progress: show progress bars.
        seed: seed of the memory and query generators.
        command: the command line to record (default: this process's argv).
        store_dir: keep the store in this folder and reuse what an earlier run with the same ``n`` and ``seed``
            stored there (see the module docstring); default: a temporary folder, removed afterwards.
        lexical_only: store no embeddings and time lexical search only (see the module docstring).

    Returns:
        The report: ``n``, p50/p95/p99 per mode in ms, ``query_embedding``, ``ingest_per_s``, the search-only
        latencies, the targets that apply at ``n``, and what produced it (machine, data, model, revision).
    """
    from hopmem.memory_api import Memory

    if n < 1:
        raise InputError(f"The number of memories must be at least 1, not {n}.")
    if queries < 1:
        raise InputError(f"The number of queries must be at least 1, not {queries}.")
    run = RunRecord(command or shlex.join(sys.argv))
    load_before = [round(x, 2) for x in os.getloadavg()]
    total_started = time.perf_counter()
    corpus = load_corpus(data_root)
    items = generate_memories(n, corpus, seed=seed)
    query_texts, query_source = generate_queries(queries, corpus, seed=seed)
    corpus_s = time.perf_counter() - total_started
    log.info("generated %d memories and %d queries in %.1f s", n, len(query_texts), corpus_s)

    with contextlib.ExitStack() as stack:
        if store_dir is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hopmem-bench-")))
        else:
            folder = Path(store_dir).expanduser()
        config = settings.model_copy(update={"data_dir": folder, "qdrant_location": ""})
        with Memory(config) as memory:
            started = time.perf_counter()
            embedder = None if lexical_only else memory.embedder
            if embedder is not None:
                embedder.embed(["warm-up"])
            load_s = time.perf_counter() - started

            reused = _stored_prefix(memory, items, folder) if store_dir is not None else 0
            if reused and not lexical_only and memory.stats()["vectors"] < reused:
                raise InputError(
                    f"The store in {folder} holds memories without vectors (made with --lexical-only); "
                    "give --store another folder."
                )
            cpu: dict[str, Any] = {}
            ingest: dict[str, Any] | None = None
            if reused < n:
                meter = CpuMeter.start()
                if lexical_only:
                    ingest = _ingest_text_only(memory, items[reused:], progress=progress)
                else:
                    ingest = _ingest(memory, items[reused:], progress=progress)
                cpu["ingest"] = meter.read()
            stats = memory.stats()
            if stats["memories"] != n:
                log.warning("the store holds %d memories, not %d", stats["memories"], n)

            tenant = memory.tenant
            searcher = None if lexical_only else memory.searcher
            meter = CpuMeter.start()
            started = time.perf_counter()
            memory.search(query_texts[0], k=SEARCH_K, mode="lexical" if lexical_only else "hybrid")
            index_load_s = time.perf_counter() - started  # the vector index is loaded by the first dense search
            started = time.perf_counter()
            if memory.store.lexical_backend == "index":
                memory.store.lexical_index.refresh()  # the first search started its build in a thread: wait for it
            lexical_build_s = time.perf_counter() - started

            results: dict[str, Any] = dict.fromkeys(
                ("dense", "hybrid", "query_embedding", "dense_search_only", "hybrid_search_only")
            )
            for mode in ("lexical",) if lexical_only else ("lexical", "dense", "hybrid"):
                times = _time_each(
                    query_texts,
                    _user_search(memory, mode),
                    desc=f"search {mode}",
                    progress=progress,
                )
                results[mode] = percentiles(times, QUANTILES)
            if searcher is not None:
                active = searcher
                times = _time_each(query_texts, lambda _i, q: active.embed_query(q), desc="embed", progress=progress)
                results["query_embedding"] = percentiles(times, QUANTILES)
                vectors: list[NDArray[np.float32]] = [active.embed_query(q) for q in query_texts]
                for mode in ("dense", "hybrid"):
                    times = _time_each(
                        query_texts,
                        _search_with_vector(active, tenant, mode, vectors),
                        desc=f"search {mode} (vector given)",
                        progress=progress,
                    )
                    results[f"{mode}_search_only"] = percentiles(times, QUANTILES)
            cpu["queries"] = meter.read()

    total_s = time.perf_counter() - total_started
    report: dict[str, Any] = {
        "n": n,
        "lexical": results["lexical"],
        "dense": results["dense"],
        "hybrid": results["hybrid"],
        "query_embedding": results["query_embedding"],
        "ingest_per_s": None if ingest is None else ingest["per_s"],
        "dense_search_only": results["dense_search_only"],
        "hybrid_search_only": results["hybrid_search_only"],
        "targets": _targets(n, results),
        "ingest": ingest,
        "stored": {"memories": stats["memories"], "vectors": stats["vectors"]},
        "store": {"kept": store_dir is not None, "reused": reused},
        "queries": len(query_texts),
        "k": SEARCH_K,
        "warmup_queries": WARMUP_QUERIES,
        "timings_s": {
            "corpus": round(corpus_s, 3),
            "embedder_load": round(load_s, 3),
            "ingest": None if ingest is None else ingest["seconds"],
            "first_search": round(index_load_s, 3),
            "lexical_index_build": round(lexical_build_s, 3),
            "total": round(total_s, 3),
        },
        "vector_backend": settings.vector_backend,
        "lexical_only": lexical_only,
        "embedder": None
        if embedder is None
        else {
            "name": embedder.name,
            "dim": embedder.dim,
            "batch_size": settings.embed_batch_size,
            "max_seq_length": settings.embed_max_seq_length,
        },
        "search_settings": {
            "fusion": settings.fusion,
            "rrf_k": settings.rrf_k,
            "depth": settings.retrieve_depth,
            "lexical_backend": settings.lexical_backend,
            "query_runtime": settings.embed_query_runtime,
        },
        "torch_threads": _torch_threads(),
        "cpu": cpu,
        **run.finish(),
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "data": {
            **corpus.describe(),
            "memories_sha256": fingerprint(items),
            "query_source": query_source,
        },
        "seed": seed,
    }
    return report


def _torch_threads() -> int | None:
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:  # pragma: no cover - torch comes with sentence-transformers
        return None
