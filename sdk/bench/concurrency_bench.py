"""Concurrency benchmark: ``procs`` processes read and write one store at once; their logs must predict its end state.

Set-up: a fresh data directory holds one store, seeded with a few memories. ``procs`` worker processes (spawn
context; each opens its own :class:`Memory` and loads its own embedder) wait until all have loaded, then each runs
``ops`` operations: add ~40 %, search ~30 % (hybrid), update ~20 %, erase ~10 % (see
:mod:`hopmem.bench.concurrency_worker`). Timing starts at the common start signal, so model loading is not counted.

Verification, after every worker has exited, compares the store with the logs alone:

* ``errors``: operations that raised.
* ``lost``: memories the logs say must exist that are missing, or whose content is not the last logged content
  (plus seed memories that vanished, and ids two workers both claim).
* ``duplicated``: stored rows that no logged operation explains (a content stored twice, a row nobody added).
* ``not_erased``: memories whose erase was logged ok but which are still stored.

A failed operation leaves its memory in either state, so the verifier accepts both for it, and a row written by an
add that then raised is counted apart (``orphans_of_errors``), not as a duplicate.

The store's own checks (:func:`store_checks`): ``rows_without_vector`` counts visible memories that have no stored
vector or that the vector index (rebuilt from SQLite) does not hold, ``quarantined_rows`` the writes the trust gate
held (invisible; the workers are honest, so a held write is a false alarm of the gate), ``held_writes`` the adds
the workers' logs say were held, ``hidden_rows_with_vector`` quarantined memories whose vector reached the index
tables, ``trust_signals`` the signals recorded, by kind (honest workers earn none of the negative ones), and
``integrity_problems`` what SQLite's and FTS5's integrity checks report. The trust gate stays on.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import queue
import resource
import shlex
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from hopmem.bench.concurrency_worker import MARKER, OPS, WEIGHTS, WorkerConfig, worker_main
from hopmem.bench.corpus import generate_memories, generate_queries, load_corpus
from hopmem.bench.system import CpuMeter
from hopmem.memory.datasets.metrics import percentiles
from hopmem.memory.errors import HopmemError, InputError
from hopmem.memory.run_record import RunRecord

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from hopmem.memory.store import MemoryStore
    from hopmem.settings import Settings

log = logging.getLogger(__name__)

SEED_MEMORIES = 50
QUERY_POOL = 100
LOAD_TIMEOUT_S = 900.0
EXAMPLES = 20


@dataclass
class Verification:
    """What the store holds compared with what the logs say it must hold."""

    errors: int = 0
    lost: int = 0
    duplicated: int = 0
    not_erased: int = 0
    orphans_of_errors: int = 0
    id_conflicts: int = 0
    seeds_lost: int = 0
    expected_rows: int = 0
    stored_rows: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append(text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "errors": self.errors,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "not_erased": self.not_erased,
            "orphans_of_errors": self.orphans_of_errors,
            "id_conflicts": self.id_conflicts,
            "seeds_lost": self.seeds_lost,
            "expected_rows": self.expected_rows,
            "stored_rows": self.stored_rows,
            "examples": self.examples,
        }


def _marker_of(content: str) -> str | None:
    found = MARKER.findall(content)
    return found[-1] if found else None


def verify(entries: Iterable[Mapping[str, Any]], rows: Mapping[int, str], seed_ids: Iterable[int]) -> Verification:
    """Check the stored ``rows`` (id -> content, every memory of the tenant) against the workers' log ``entries``.

    Each worker's entries are replayed in ``seq`` order to get, per memory it touched, the state its log predicts:
    live with a given marker, erased, or (after a failed op) one of several. ``seed_ids`` are the memories stored
    before the workers started; none of them may go missing.
    """
    result = Verification()
    by_worker: dict[int, list[Mapping[str, Any]]] = {}
    for entry in entries:
        by_worker.setdefault(int(entry["w"]), []).append(entry)
    # (worker, id) -> the markers the row may hold at the end; None stands for "absent"
    predicted: dict[tuple[int, int], set[str | None]] = {}
    orphan_markers: set[str] = set()
    for worker, logged in by_worker.items():
        for entry in sorted(logged, key=lambda e: int(e["seq"])):
            op, ok = entry["op"], bool(entry["ok"])
            if not ok:
                result.errors += 1
            if op == "search":
                continue
            if op == "add" and not ok:
                if entry.get("marker"):
                    orphan_markers.add(str(entry["marker"]))
                continue
            key = (worker, int(entry["id"]))
            if op == "add":
                predicted[key] = {str(entry["marker"])}
            elif op == "update":
                before = predicted.get(key, {None})
                predicted[key] = {str(entry["marker"])} if ok else before | {str(entry["marker"])}
            elif op == "erase":
                predicted[key] = {None} if ok else predicted.get(key, set()) | {None}
    stored = {int(i): _marker_of(c) for i, c in rows.items()}
    owners: dict[int, list[int]] = {}
    for worker, memory_id in predicted:
        owners.setdefault(memory_id, []).append(worker)
    for memory_id, workers in sorted(owners.items()):
        if len(workers) > 1:
            result.id_conflicts += len(workers) - 1
            result.lost += len(workers) - 1
            result.note(f"id {memory_id} was logged by workers {sorted(workers)}")
        possible: set[str | None] = set().union(*(predicted[(w, memory_id)] for w in workers))
        actual = stored.get(memory_id)
        present = memory_id in stored
        if possible == {None}:
            result.not_erased += int(present)
            if present:
                result.note(f"id {memory_id} was erased but is still stored")
            continue
        if None not in possible:
            result.expected_rows += 1
        if present and actual not in possible:
            result.lost += 1
            result.note(f"id {memory_id} holds {actual}, the log says {sorted(p or '-' for p in possible)}")
        elif not present and None not in possible:
            result.lost += 1
            result.note(f"id {memory_id} ({sorted(p or '-' for p in possible)}) is missing")
    seeds = set(seed_ids)
    missing_seeds = seeds - stored.keys()
    result.seeds_lost = len(missing_seeds)
    result.lost += len(missing_seeds)
    result.expected_rows += len(seeds)
    for memory_id in sorted(missing_seeds)[:EXAMPLES]:
        result.note(f"seed memory {memory_id} is missing")
    for memory_id, mark in sorted(stored.items()):
        if memory_id in owners or memory_id in seeds:
            continue
        if mark is not None and mark in orphan_markers:
            result.orphans_of_errors += 1
            continue
        result.duplicated += 1
        result.note(f"id {memory_id} ({mark or 'no marker'}) is stored but no log explains it")
    result.stored_rows = len(stored)
    return result


def read_logs(log_dir: Path) -> list[dict[str, Any]]:
    """Every entry of every worker log under ``log_dir`` (a torn last line, from a killed worker, is skipped)."""
    entries: list[dict[str, Any]] = []
    for path in sorted(log_dir.glob("worker-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("skipped a torn line in %s", path)
    return entries


def store_checks(store: MemoryStore, tenant: str) -> dict[str, Any]:
    """Whether every visible memory of ``tenant`` is indexed and nothing held leaked (see the module docstring)."""
    from hopmem.memory.vectors.exact import ExactVectorIndex

    visible = {
        int(r[0]) for r in store.conn.execute("SELECT id FROM memories WHERE tenant = ? AND quarantined = 0", (tenant,))
    }
    held = {
        int(r[0]) for r in store.conn.execute("SELECT id FROM memories WHERE tenant = ? AND quarantined = 1", (tenant,))
    }
    vectors = store.vector_ids(tenant)
    index = ExactVectorIndex(store)
    try:
        indexed = index.ids(tenant)
    finally:
        index.close()
    signals = store.conn.execute(
        "SELECT kind, count(*) FROM trust_signals WHERE tenant = ? GROUP BY kind ORDER BY kind", (tenant,)
    )
    return {
        "visible_rows": len(visible),
        "quarantined_rows": len(held),
        "rows_without_vector": len(visible - (vectors & indexed)),
        "hidden_rows_with_vector": len(held & (vectors | indexed)),
        "trust_signals": {str(kind): int(count) for kind, count in signals},
        "integrity_problems": store.integrity_problems(),
    }


def verify_workdir(workdir: Path, tenant: str) -> tuple[Verification, list[dict[str, Any]], dict[str, Any]]:
    """Verify the store and logs left in ``workdir`` by a run; returns the verification, the entries, store checks."""
    from hopmem.memory.store import MemoryStore

    entries = read_logs(workdir / "logs")
    seed_ids = json.loads((workdir / "seed_ids.json").read_text())
    with MemoryStore(workdir / "data" / "hopmem.sqlite") as store:
        rows = {
            int(r[0]): str(r[1])
            for r in store.conn.execute("SELECT id, content FROM memories WHERE tenant = ?", (tenant,))
        }
        checks = store_checks(store, tenant)
    checks["held_writes"] = sum(1 for e in entries if e.get("held"))
    return verify(entries, rows, seed_ids), entries, checks


def _latency(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    per_op: dict[str, Any] = {}
    for op in OPS:
        times = [float(e["ms"]) for e in entries if e["op"] == op]
        per_op[op] = {"count": len(times), **percentiles(times, (50, 95, 99))}
    return per_op


def _wait_ready(processes: Sequence[BaseProcess], ready: Any, *, progress: bool) -> dict[int, float]:
    """Wait until every worker reports it has loaded; returns load seconds per worker.

    Raises:
        HopmemError: when a worker fails to start or the load takes longer than :data:`LOAD_TIMEOUT_S`.
    """
    loads: dict[int, float] = {}
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    with tqdm(total=len(processes), desc="loading workers", unit="proc", disable=not progress) as bar:
        while len(loads) < len(processes):
            try:
                worker, seconds, error = ready.get(timeout=1.0)
            except queue.Empty:
                dead = [i for i, p in enumerate(processes) if p.exitcode is not None and i not in loads]
                if dead:
                    raise HopmemError(
                        f"Worker {dead[0]} exited with code {processes[dead[0]].exitcode} before it was ready; "
                        "run with -v to see why."
                    ) from None
                if time.monotonic() > deadline:
                    raise HopmemError(
                        f"The workers did not load within {LOAD_TIMEOUT_S:.0f} s; use fewer --procs."
                    ) from None
                continue
            if error is not None:
                raise HopmemError(f"Worker {worker} failed to load ({error.rstrip('.')}).")
            loads[int(worker)] = float(seconds)
            bar.update(1)
    return loads


def _count_lines(paths: Sequence[Path]) -> int:
    total = 0
    for path in paths:
        if path.exists():
            with path.open("rb") as handle:
                total += sum(1 for _ in handle)
    return total


def run_concurrency_bench(
    procs: int,
    ops: int,
    *,
    settings: Settings,
    seed: int = 0,
    progress: bool = True,
    data_root: Path | str | None = None,
    workdir: Path | None = None,
    threads_per_worker: int | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Run ``procs`` workers of ``ops`` operations each on one store and verify the store against their logs.

    Args:
        procs: worker processes.
        ops: operations per worker.
        settings: embedder and search settings; the data directory is replaced by one under ``workdir``.
        seed: seed of the texts, queries and each worker's op sequence.
        progress: show progress bars.
        data_root: the folder with the corpora the texts come from (default: ``shared/data`` next to the repo).
        workdir: where the store and the worker logs go; kept afterwards. Default: a temporary folder, removed.
        threads_per_worker: torch threads per worker (default: the CPU count divided by ``procs``, at least 1,
            so that the workers do not oversubscribe the cores).
        command: the command line to record (default: this process's argv).

    Returns:
        The report: ``procs``, ``ops``, ``errors``, ``lost``, ``duplicated``, ``p95_ms`` and the details.
    """
    from hopmem.memory_api import Memory

    if procs < 1 or ops < 1:
        raise InputError(f"procs and ops must be at least 1, not {procs} and {ops}.")
    if settings.vector_backend != "exact":
        raise InputError(
            "The concurrency benchmark runs on the exact vector backend only; set HOPMEM_VECTOR_BACKEND=exact."
        )
    run = RunRecord(command or shlex.join(sys.argv))
    load_before = [round(x, 2) for x in os.getloadavg()]
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // procs)
    corpus = load_corpus(data_root)
    texts = generate_memories(SEED_MEMORIES + procs * ops, corpus, seed=seed)
    queries, query_source = generate_queries(QUERY_POOL, corpus, seed=seed)
    with ExitStack() as stack:
        root = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hopmem-conc-")))
        if (root / "data").exists() and any((root / "data").iterdir()):
            raise InputError(f"The folder {root / 'data'} already holds a store; give the benchmark an empty folder.")
        log_dir = root / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        for old in log_dir.glob("worker-*.jsonl"):
            old.unlink()
        config = settings.model_copy(update={"data_dir": root / "data", "qdrant_location": ""})
        with Memory(config) as memory:
            seeded = memory.add_many(texts[:SEED_MEMORIES], agent="bench-seed", progress=False)
            tenant = memory.tenant
            embedder = {"name": memory.embedder.name, "dim": memory.embedder.dim}
        seed_ids = sorted({r.id for r in seeded})
        (root / "seed_ids.json").write_text(json.dumps(seed_ids))

        meter = CpuMeter.start()
        ctx = mp.get_context("spawn")
        ready = ctx.Queue()
        go = ctx.Event()
        log_paths = [log_dir / f"worker-{w:02d}.jsonl" for w in range(procs)]
        processes = []
        for w in range(procs):
            pool = texts[SEED_MEMORIES + w * ops : SEED_MEMORIES + (w + 1) * ops]
            worker_config = WorkerConfig(
                worker=w,
                ops=ops,
                seed=seed,
                settings=config,
                log_path=log_paths[w],
                texts=tuple((t["title"], t["content"]) for t in pool),
                queries=tuple(queries),
                threads=threads,
            )
            process = ctx.Process(target=worker_main, args=(worker_config, ready, go), name=f"hopmem-bench-w{w:02d}")
            process.start()
            processes.append(process)
        try:
            loads = _wait_ready(processes, ready, progress=progress)
            started_wall = time.time()
            started = time.perf_counter()
            go.set()
            with tqdm(total=procs * ops, desc="operations", unit="op", disable=not progress) as bar:
                while alive := [p for p in processes if p.is_alive()]:
                    alive[0].join(timeout=0.5)
                    if progress:
                        bar.update(_count_lines(log_paths) - bar.n)
                bar.update(_count_lines(log_paths) - bar.n)
            wall_s = time.perf_counter() - started
        finally:
            for p in processes:
                if p.is_alive():
                    p.terminate()
                p.join()
        exit_codes = [p.exitcode for p in processes]
        cpu = meter.read()
        verification, entries, checks = verify_workdir(root, tenant)

    done = [float(e["t"]) for e in entries]
    ops_wall_s = (max(done) - started_wall) if done else 0.0
    all_ms = [float(e["ms"]) for e in entries]
    op_counts = {op: sum(1 for e in entries if e["op"] == op) for op in OPS}
    failures: dict[str, int] = {}
    for e in entries:
        if not e["ok"]:
            kind = str(e.get("error", "")).split(":", 1)[0]
            failures[kind] = failures.get(kind, 0) + 1
    summary = verification.to_dict()
    return {
        "procs": procs,
        "ops": ops,
        "errors": verification.errors,
        "lost": verification.lost,
        "duplicated": verification.duplicated,
        "p95_ms": percentiles(all_ms, (95,))["p95"],
        "p50_ms": percentiles(all_ms, (50,))["p50"],
        "per_op": _latency(entries),
        "logged_ops": len(entries),
        "missing_ops": procs * ops - len(entries),
        "op_counts": op_counts,
        "op_mix": dict(zip(OPS, WEIGHTS, strict=True)),
        "error_kinds": failures,
        "verification": {**summary, **checks},
        "exit_codes": exit_codes,
        "wall_s": round(wall_s, 3),
        "ops_per_s": round(len(entries) / ops_wall_s, 2) if ops_wall_s > 0 else None,
        "worker_load_s": percentiles(list(loads.values()), (50, 95)) | {"max": round(max(loads.values()), 3)},
        "threads_per_worker": threads,
        "cpu": cpu,
        "max_worker_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "seed_memories": len(seed_ids),
        "embedder": embedder,
        "vector_backend": settings.vector_backend,
        "sqlite_busy_timeout_ms": settings.sqlite_busy_timeout_ms,
        **run.finish(),
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "data": {**corpus.describe(), "query_source": query_source},
        "seed": seed,
    }
