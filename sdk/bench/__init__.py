"""Benchmarks of the memory engine: search latency and ingest throughput at scale, and concurrent writers."""
