"""hopmem.memory.datasets: evaluation and training data in BEIR layout, and the metrics scored on it.

- :mod:`~hopmem.memory.datasets.beir`: read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``;
- :mod:`~hopmem.memory.datasets.store_loader`: a BEIR corpus indexed into a memory store once and cached;
- :mod:`~hopmem.memory.datasets.splits`: train/dev query splits without leakage;
- :mod:`~hopmem.memory.datasets.metrics`: ranking metrics over qrels, answer metrics, latency percentiles.

Why this sits in ``memory`` and not beside the SDK's evaluation code (``hopmem.eval``): ``finetune`` trains and
evaluates on these very data sets and splits, and the dependency direction lets ``finetune`` import ``agents`` and
``memory`` only, never the SDK. Placed here, training and evaluation read, split and score the data with one code.

This package ``__init__`` imports nothing, so that :mod:`hopmem.memory.ingest` (which reads corpus files through
:mod:`~hopmem.memory.datasets.beir`) and :mod:`~hopmem.memory.datasets.store_loader` (which ingests through it) form
no import cycle.
"""
