"""Benchmarks of the memory engine: search latency and ingest throughput at scale, and concurrent writers.

* :mod:`hopmem.bench.corpus`: deterministic memories and queries made of the real text of the shared data sets.
* :mod:`hopmem.bench.memory_bench`: ``hopmem bench memory`` (ingest rate, p50/p95/p99 per search mode).
* :mod:`hopmem.bench.concurrency_bench` (+ ``concurrency_worker``): ``hopmem bench concurrency`` (many processes on
  one store, verified against their logs).
* :mod:`hopmem.bench.system`: how much CPU other processes took during a run.
"""
