"""One worker process of the concurrency benchmark: its own :class:`Memory` on the shared store, a seeded op mix.

The worker logs every operation to its own JSONL file (one line per op, flushed at once, so that a crash leaves the
log up to the op that crashed) with: ``w`` (worker), ``seq``, ``op``, ``id``, ``marker``, ``ok``, ``error``, ``ms``,
and for adds ``held`` (the trust gate quarantined the write). It updates and erases only memories it added itself,
so that its log alone predicts what the store must hold for it; searches read anything. Each content carries a
marker unique to (worker, op), ``[bench:wWW:SSSS]``, by which the verifier recognises rows.

Identity: the worker writes through the user's handle (a ``Memory`` without an agent), labelling each add and update
with its agent id ``bench-wNN`` (an import on the agent's behalf), and erases through the same handle. The trust gate
stays on: the labelled writes are gated as that agent's, and erasing or rewriting its own writes is no correction
of the agent (:mod:`hopmem.memory.trust.corrections`).

It is started by :func:`hopmem.bench.concurrency_bench.run_concurrency_bench` through ``multiprocessing``'s spawn
context, loads the embedder, reports ready, and waits for the common start signal so that load time is not timed.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event

    from hopmem.settings import Settings

log = logging.getLogger(__name__)

OPS: tuple[str, ...] = ("add", "search", "update", "erase")
WEIGHTS: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)
MARKER = re.compile(r"\[bench:w\d+:\d+\]")
START_TIMEOUT_S = 1800.0


def marker(worker: int, seq: int) -> str:
    """The unique content marker of op ``seq`` of ``worker``."""
    return f"[bench:w{worker:02d}:{seq:04d}]"


def agent_id(worker: int) -> str:
    return f"bench-w{worker:02d}"


@dataclass(frozen=True)
class WorkerConfig:
    """What one worker needs; picklable for the spawn context."""

    worker: int
    ops: int
    seed: int
    settings: Settings
    log_path: Path
    texts: tuple[tuple[str, str], ...]  # (title, content) pool, one per op at most
    queries: tuple[str, ...]
    threads: int


def worker_main(config: WorkerConfig, ready: Queue[tuple[int, float, str | None]], go: Event) -> None:
    """Entry point of a worker process (see the module docstring)."""
    started = time.perf_counter()
    try:
        import torch

        torch.set_num_threads(config.threads)
        from hopmem.memory_api import Memory

        memory = Memory(config.settings)
        memory.embedder.embed(["warm-up"])
        _ = memory.searcher
    except Exception as exc:  # the parent reports it; nothing else can
        ready.put((config.worker, time.perf_counter() - started, f"{type(exc).__name__}: {exc}"))
        raise
    ready.put((config.worker, time.perf_counter() - started, None))
    if not go.wait(START_TIMEOUT_S):
        memory.close()
        raise SystemExit(3)
    try:
        run_ops(memory, config)
    finally:
        memory.close()


def run_ops(memory: Any, config: WorkerConfig) -> None:
    """Run ``config.ops`` operations of the seeded mix on ``memory``, logging each to ``config.log_path``."""
    rng = random.Random(f"worker-{config.seed}-{config.worker}")
    live: list[int] = []  # own memories that exist, by the log
    texts = list(config.texts)
    with config.log_path.open("a", encoding="utf-8") as out:
        for seq in range(config.ops):
            planned = rng.choices(OPS, WEIGHTS)[0]
            op = planned if planned in ("add", "search") or live else "add"
            entry: dict[str, Any] = {"w": config.worker, "seq": seq, "op": op, "planned": planned}
            began = time.perf_counter()
            try:
                if op == "add":
                    title, text = texts[seq % len(texts)]
                    entry["marker"] = marker(config.worker, seq)
                    record = memory.add(f"{text} {entry['marker']}", title=title, agent=agent_id(config.worker))
                    entry["id"] = record.id
                    entry["held"] = record.quarantined
                    live.append(record.id)
                elif op == "update":
                    target = live[rng.randrange(len(live))]
                    _, text = texts[seq % len(texts)]
                    entry.update(id=target, marker=marker(config.worker, seq))
                    memory.update(target, content=f"{text} {entry['marker']}", agent=agent_id(config.worker))
                elif op == "erase":
                    target = live.pop(rng.randrange(len(live)))
                    entry["id"] = target
                    report = memory.erase(target)
                    if report.memories != 1:
                        raise RuntimeError(f"erase removed {report.memories} rows, not 1")
                else:
                    query = config.queries[rng.randrange(len(config.queries))]
                    entry["hits"] = len(memory.search(query, k=10, mode="hybrid"))
                entry["ok"] = True
            except Exception as exc:  # every failure is data for the verifier
                entry["ok"] = False
                entry["error"] = f"{type(exc).__name__}: {exc}"
                log.debug("worker %d op %d failed:\n%s", config.worker, seq, traceback.format_exc())
            entry["ms"] = round((time.perf_counter() - began) * 1000.0, 3)
            entry["t"] = time.time()
            out.write(json.dumps(entry) + "\n")
            out.flush()
