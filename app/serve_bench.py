"""Load benchmark of ``hopmem serve``: concurrent HTTP clients against a real server process on loopback.

What it does, in order:

1. Makes a data folder in a temporary directory: a copy of a kept store (``store``, e.g. the memory benchmark's
   ``reports/tmp/bench-store-10k``; copied so the kept store stays exactly the memory benchmark's), or a fresh store
   seeded in-process with ``n`` memories of the benchmark corpus (:mod:`hopmem.bench.corpus`).
2. Creates a user key of the tenant with ``hopmem keys create`` and starts ``hopmem serve --workers W`` on a free
   loopback port (a real subprocess; its per-key rate limit is lifted, since the limiter is not what is measured).
3. Warms the workers up (unrecorded), then times ``idle_queries`` searches from one client (latency without load).
4. The loaded run: ``clients`` threads, each with its own HTTP connection, take ``requests`` operations from one
   shared list (``add_share`` of them adds of new corpus texts, the rest searches of BEIR query texts) and time each
   request end to end (``time.perf_counter`` around the HTTP call: serialisation, loopback, queueing in the server
   and the work). ``chat`` chat completions run afterwards with the same concurrency, timed apart.
5. Verification through the API: every acknowledged add is read back by id (``GET /v1/memories/{id}``, same text)
   and found by a dense search for its own text (so its vector is in the index), and ``/v1/stats`` must count one
   vector per memory. A write that was acknowledged but is not there is *lost*; one there without its vector is
   *unindexed*.

Latencies are milliseconds (p50/p95/p99 per operation); throughput is completed requests per second of the loaded
run's wall clock. The search target (p50 <= 25 ms at 10k memories) is judged on the loaded run's searches and on
the idle ones (see :func:`_targets`). With ``clients`` requests always in flight, the loaded latency is about
``clients / throughput`` (Little's law): on a 2-core machine it measures the queue more than the search.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from hopmem.bench.corpus import generate_memories, generate_queries, load_corpus
from hopmem.bench.system import CpuMeter
from hopmem.memory.datasets.metrics import percentiles
from hopmem.memory.errors import InputError
from hopmem.memory.run_record import RunRecord

if TYPE_CHECKING:
    from hopmem.settings import Settings

log = logging.getLogger(__name__)

QUANTILES = (50, 95, 99)
SEARCH_K = 10
START_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 300.0
# (name, target, scale): search p50 in ms, judged when the store held `scale` memories at the start.
SEARCH_TARGET_MS = 25.0
SEARCH_TARGET_SCALE = 10_000
STORE_FILES = ("hopmem.sqlite", "hopmem.sqlite-wal", "hopmem.sqlite-shm", "behaviour.sqlite", "qdrant")


@dataclass(frozen=True)
class ServeBenchConfig:
    """What one run does (the CLI's options).

    Args:
        clients: concurrent HTTP clients (threads, one connection each).
        requests: operations of the loaded run, searches and adds together.
        workers: uvicorn worker processes of the server (one store).
        store: a kept store folder to copy and serve (``n`` is then what it holds); None: seed ``n`` memories.
        n: memories to seed when ``store`` is None.
        add_share: share of adds in the loaded run (the rest are searches).
        chat: chat completions run after the loaded run (0: none).
        idle_queries: searches timed one at a time before the load (the latency of an idle server).
        mode: search mode of the searches.
        seed: seed of the corpus texts, queries and the operation order.
        data_root: folder with the corpora (default: ``shared/data``).
        sweep: client counts of extra runs after the loaded one (``sweep_requests`` operations each, same mix), to
            show how the latency grows with the requests in flight.
        sweep_requests: operations of each sweep run.
    """

    clients: int = 16
    requests: int = 400
    workers: int = 2
    store: Path | None = None
    n: int = 10_000
    add_share: float = 0.2
    chat: int = 0
    idle_queries: int = 50
    mode: str = "hybrid"
    seed: int = 0
    data_root: Path | None = None
    sweep: tuple[int, ...] = ()
    sweep_requests: int = 200

    def check(self) -> None:
        """Raises :class:`InputError` for values the run cannot use."""
        if self.clients < 1 or self.requests < 1 or self.workers < 1:
            raise InputError("--clients, --requests and --workers must each be at least 1.")
        if any(c < 1 for c in self.sweep) or (self.sweep and self.sweep_requests < 1):
            raise InputError("Every --sweep client count and --sweep-requests must be at least 1.")
        if not 0.0 <= self.add_share <= 1.0:
            raise InputError(f"The share of adds must be between 0 and 1, not {self.add_share}.")
        if self.store is None and self.n < 1:
            raise InputError(f"The number of memories to seed must be at least 1, not {self.n}.")
        if self.store is not None and not (self.store / "hopmem.sqlite").is_file():
            raise InputError(f"{self.store} holds no hopmem.sqlite; give --store a kept store folder or use --n.")


@dataclass
class Sample:
    """One timed request: the operation, its milliseconds, HTTP status (0: no answer) and what came back."""

    op: str
    ms: float
    status: int
    body: dict[str, Any] | None
    error: str | None = None
    text: str | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hopmem_command() -> list[str]:
    """The ``hopmem`` executable of this environment (next to the interpreter), else ``python -m hopmem.app.cli``."""
    script = Path(sys.executable).with_name("hopmem")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hopmem.app.cli"]


def _server_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    """This process's environment with the run's data folder, loopback and no rate limit (not what is measured).

    The tenant and LLM backend are passed on explicitly, so that the CLI's global options reach the server too.
    """
    env = dict(os.environ)
    env["HOPMEM_DATA_DIR"] = str(data_dir)
    env["HOPMEM_TENANT"] = settings.tenant
    env["HOPMEM_LLM_BACKEND"] = settings.llm_backend
    env["HOPMEM_SERVER_HOST"] = "127.0.0.1"
    env["HOPMEM_SERVER_RATE_PER_MINUTE"] = "0"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _prepare_store(config: ServeBenchConfig, settings: Settings, data_dir: Path, corpus: Any) -> dict[str, Any]:
    """Copy the kept store into ``data_dir``, or seed ``config.n`` memories there; returns what the store holds."""
    from hopmem.memory_api import Memory

    data_dir.mkdir(parents=True)
    started = time.perf_counter()
    if config.store is not None:
        for name in STORE_FILES:
            source = config.store / name
            if source.is_dir():
                shutil.copytree(source, data_dir / name)
            elif source.is_file():
                shutil.copy2(source, data_dir / name)
    local = settings.model_copy(update={"data_dir": data_dir, "qdrant_location": ""})
    with Memory(local) as memory:
        if config.store is None:
            memory.add_many(generate_memories(config.n, corpus, seed=config.seed), progress=False)
        stats = memory.stats()
    if stats["memories"] < 1:
        raise InputError(f"The store holds no memories of tenant {settings.tenant!r}; check --store and --tenant.")
    return {
        "source": None if config.store is None else str(config.store),
        "seeded": config.store is None,
        "tenant": settings.tenant,
        "memories": int(stats["memories"]),
        "vectors": int(stats["vectors"]),
        "prepare_s": round(time.perf_counter() - started, 3),
    }


def _create_key(env: dict[str, str], tenant: str) -> str:
    """A user key of ``tenant``, made the way a user makes one (``hopmem keys create``)."""
    import json

    out = subprocess.run(
        [*_hopmem_command(), "keys", "create", "--tenant", tenant, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=START_TIMEOUT_S,
    )
    if out.returncode != 0:
        raise RuntimeError(f"hopmem keys create failed ({out.returncode}): {out.stderr.strip()[-1000:]}")
    return str(json.loads(out.stdout)["key"])


@contextmanager
def _server(env: dict[str, str], workers: int, log_path: Path) -> Iterator[str]:
    """A running ``hopmem serve`` on a free loopback port; yields its base URL and stops it (SIGINT) afterwards."""
    port = _free_port()
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [*_hopmem_command(), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"hopmem serve exited ({proc.returncode}): {_tail(log_path)}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"hopmem serve did not answer /health in {START_TIMEOUT_S:.0f} s: {_tail(log_path)}")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def _call(client: httpx.Client, op: str, payload: dict[str, Any], text: str | None = None) -> Sample:
    """One timed request of ``op`` (``search``, ``add`` or ``chat``)."""
    path = {"search": "/v1/memories/search", "add": "/v1/memories", "chat": "/v1/chat/completions"}[op]
    started = time.perf_counter()
    try:
        response = client.post(path, json=payload)
        ms = (time.perf_counter() - started) * 1000.0
    except httpx.HTTPError as exc:
        return Sample(op, (time.perf_counter() - started) * 1000.0, 0, None, f"{type(exc).__name__}: {exc}", text)
    try:
        body = response.json()
    except ValueError:
        body = None
    error = None if response.status_code == 200 else f"HTTP {response.status_code}: {response.text[:300]}"
    return Sample(op, ms, response.status_code, body if isinstance(body, dict) else None, error, text)


def _payload(op: str, text: str, mode: str) -> dict[str, Any]:
    if op == "search":
        return {"query": text, "k": SEARCH_K, "mode": mode}
    if op == "add":
        return {"content": text, "title": "serve bench"}
    return {"model": "hopmem-agent", "messages": [{"role": "user", "content": text}]}


def _run_ops(url: str, key: str, ops: list[tuple[str, str]], clients: int, mode: str) -> tuple[list[Sample], float]:
    """Run ``ops`` with ``clients`` threads sharing one work list; returns the samples and the wall seconds."""
    samples: list[Sample] = []
    lock = threading.Lock()
    work = iter(ops)

    def client_loop() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
            while True:
                with lock:
                    op_text = next(work, None)
                if op_text is None:
                    return
                op, text = op_text
                sample = _call(client, op, _payload(op, text, mode), text)
                with lock:
                    samples.append(sample)

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(min(clients, len(ops)))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples, time.perf_counter() - started


def _summary(samples: list[Sample]) -> dict[str, Any]:
    """Count, errors and latency percentiles (ms, successful requests) of one operation's samples."""
    ok = [s.ms for s in samples if s.error is None]
    row: dict[str, Any] = {"count": len(samples), "errors": len(samples) - len(ok)}
    row.update(percentiles(ok, QUANTILES))
    row["mean"] = round(sum(ok) / len(ok), 3) if ok else 0.0
    row["max"] = round(max(ok), 3) if ok else 0.0
    return row


def _verify(url: str, key: str, adds: list[Sample]) -> dict[str, Any]:
    """Every acknowledged add read back by id with its text, and found by a dense search for that text."""
    acknowledged = [(int(s.body["id"]), s.text or "") for s in adds if s.error is None and s.body and "id" in s.body]
    lost: list[int] = []
    unindexed: list[int] = []
    changed: list[int] = []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        for memory_id, text in acknowledged:
            got = client.get(f"/v1/memories/{memory_id}")
            if got.status_code != 200:
                lost.append(memory_id)
                continue
            if got.json().get("content") != text:
                changed.append(memory_id)
            found = client.post("/v1/memories/search", json={"query": text, "k": SEARCH_K, "mode": "dense"})
            ids = {r["id"] for r in found.json().get("results", [])} if found.status_code == 200 else set()
            if memory_id not in ids:
                unindexed.append(memory_id)
        stats = client.get("/v1/stats").json()
    return {
        "acknowledged_adds": len(acknowledged),
        "unacknowledged_adds": len(adds) - len(acknowledged),
        "found": len(acknowledged) - len(lost),
        "indexed": len(acknowledged) - len(lost) - len(unindexed),
        "lost": lost,
        "unindexed": unindexed,
        "changed": changed,
        "stats": {"memories": stats.get("memories"), "vectors": stats.get("vectors")},
    }


def _operations(
    config: ServeBenchConfig, queries: list[str], new_texts: list[str], count: int
) -> list[tuple[str, str]]:
    """``count`` operations in order: adds take the next new text, searches the next query (cycled)."""
    rng = random.Random(config.seed)
    ops: list[tuple[str, str]] = []
    adds = searches = 0
    for _ in range(count):
        if rng.random() < config.add_share:
            ops.append(("add", new_texts[adds]))
            adds += 1
        else:
            ops.append(("search", queries[searches % len(queries)]))
            searches += 1
    return ops


def _sweep(
    url: str, key: str, config: ServeBenchConfig, ops: list[tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[Sample]]:
    """One run per client count of ``config.sweep`` over consecutive slices of ``ops``: a row of latency by load.

    ``bound_ms`` is Little's law's floor for that run: with ``clients`` requests always in flight at the measured
    throughput, a request spends ``clients / throughput`` seconds in the server on average, whatever the search costs.
    """
    rows: list[dict[str, Any]] = []
    every: list[Sample] = []
    for i, clients in enumerate(config.sweep):
        part = ops[i * config.sweep_requests : (i + 1) * config.sweep_requests]
        samples, wall_s = _run_ops(url, key, part, clients, config.mode)
        every.extend(samples)
        rps = len(samples) / wall_s if wall_s > 0 else 0.0
        row: dict[str, Any] = {"clients": clients, "requests": len(samples), "throughput_rps": round(rps, 2)}
        row["search"] = _summary([s for s in samples if s.op == "search"])
        row["add"] = _summary([s for s in samples if s.op == "add"])
        row["bound_ms"] = round(1000 * clients / rps, 2) if rps else None
        rows.append(row)
    return rows, every


def _targets(
    start_memories: int, per_op: dict[str, Any], idle: dict[str, Any] | None, errors: int, lost: int
) -> dict[str, Any]:
    """The goals of the run, each with whether it is met.

    The search goal applies only at its scale and is judged twice: on the loaded run's searches (``clients``
    requests in flight, so the p50 includes the wait in the server's queue) and on the idle searches (one request at
    a time: the latency a single caller sees).
    """
    targets: dict[str, Any] = {}
    scale = f"{SEARCH_TARGET_SCALE // 1000}k"
    if start_memories == SEARCH_TARGET_SCALE:
        for name, row in ((f"search_p50_at_{scale}", per_op.get("search")), (f"idle_search_p50_at_{scale}", idle)):
            if row is not None and row["count"]:
                targets[name] = {
                    "target_ms": SEARCH_TARGET_MS,
                    "measured_ms": row["p50"],
                    "met": bool(row["p50"] <= SEARCH_TARGET_MS),
                }
    targets["errors"] = {"target": 0, "measured": errors, "met": errors == 0}
    targets["lost_writes"] = {"target": 0, "measured": lost, "met": lost == 0}
    return targets


def run_serve_bench(config: ServeBenchConfig, *, settings: Settings, command: str | None = None) -> dict[str, Any]:
    """Run the load benchmark (see the module docstring) and return its report.

    Args:
        config: the run's options.
        settings: the settings the server runs with (embedder, search, LLM); its data folder is replaced by a
            temporary one, so no user store is touched.
        command: the command line to record (default: this process's argv).

    Returns:
        The report: ``per_op`` (count, errors, p50/p95/p99/mean/max ms per operation), ``idle_search``,
        ``throughput_rps``, ``errors``, ``verification``, ``targets``, the store and server setup, and the run record.
    """
    import shlex

    config.check()
    run = RunRecord(command or shlex.join(sys.argv))
    load_before = [round(x, 2) for x in os.getloadavg()]
    corpus = load_corpus(config.data_root)
    with tempfile.TemporaryDirectory(prefix="hopmem-serve-bench-") as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        store = _prepare_store(config, settings, data_dir, corpus)
        start_memories = store["memories"]
        adds_needed = config.requests + len(config.sweep) * config.sweep_requests
        new_texts = [m["content"] for m in generate_memories(start_memories + adds_needed, corpus, seed=config.seed)]
        new_texts = new_texts[start_memories:]
        queries, query_source = generate_queries(
            max(config.requests, config.idle_queries, 50), corpus, seed=config.seed
        )
        all_ops = _operations(config, queries, new_texts, adds_needed)
        ops = all_ops[: config.requests]
        env = _server_env(settings, data_dir)
        key = _create_key(env, settings.tenant)
        log_path = root / "server.log"
        with _server(env, config.workers, log_path) as url:
            warm_ops = [("search", q) for q in queries[: max(4 * config.workers, config.clients)]]
            warm, _ = _run_ops(url, key, warm_ops, config.clients, config.mode)
            idle: list[Sample] = []
            if config.idle_queries:
                idle, _ = _run_ops(url, key, [("search", q) for q in queries[: config.idle_queries]], 1, config.mode)
            meter = CpuMeter.start()
            samples, wall_s = _run_ops(url, key, ops, config.clients, config.mode)
            cpu = {"load": meter.read()}
            chat: list[Sample] = []
            chat_wall = 0.0
            if config.chat:
                chat_ops = [("chat", q) for q in queries[: config.chat]]
                chat, chat_wall = _run_ops(url, key, chat_ops, min(config.clients, config.chat), config.mode)
            sweep_rows, sweep_samples = _sweep(url, key, config, all_ops[config.requests :])
            verification = _verify(url, key, [s for s in [*samples, *sweep_samples] if s.op == "add"])
        server_log = _tail(log_path) if any(s.error for s in [*warm, *idle, *samples, *chat]) else None

    per_op = {op: _summary([s for s in samples if s.op == op]) for op in ("search", "add")}
    idle_row = _summary(idle) if idle else None
    if chat:
        per_op["chat"] = {**_summary(chat), "wall_s": round(chat_wall, 3)}
    errors = sum(1 for s in [*samples, *chat, *sweep_samples] if s.error)
    lost = len(verification["lost"])
    report: dict[str, Any] = {
        "clients": config.clients,
        "requests": config.requests,
        "workers": config.workers,
        "mix": {"search": round(1 - config.add_share, 3), "add": config.add_share},
        "search_mode": config.mode,
        "k": SEARCH_K,
        "n": start_memories,
        "per_op": per_op,
        "all": _summary(samples),
        "idle_search": idle_row,
        "idle_queries": len(idle),
        "warmup_requests": len(warm),
        "warmup_errors": sum(1 for s in warm if s.error),
        "wall_s": round(wall_s, 3),
        "throughput_rps": round(len(samples) / wall_s, 2) if wall_s > 0 else None,
        "errors": errors,
        "error_samples": [s.error for s in [*samples, *chat] if s.error][:5],
        "sweep": sweep_rows,
        "verification": verification,
        "targets": _targets(start_memories, per_op, idle_row, errors, lost),
        "store": store,
        "server": {
            "workers": config.workers,
            "rate_per_minute": 0,
            "embedder": settings.embedder,
            "vector_backend": settings.vector_backend,
            "lexical_backend": settings.lexical_backend,
            "reranker_in_search": False,
            "llm_backend": settings.llm_backend if config.chat else None,
            "log_tail": server_log,
        },
        "cpu": cpu,
        **run.finish(),
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "data": {**corpus.describe(), "query_source": query_source},
        "seed": config.seed,
    }
    return report
