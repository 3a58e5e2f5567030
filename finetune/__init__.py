"""hopmem.finetune: training of hopmem's rerankers and its TreeHop model on a user's own data.

- :mod:`~hopmem.finetune.recipe`: the skeleton every trainer shares (checks, data, checkpoints, run record, files);
- the recipes, each holding only its data, loss or reward and model: :mod:`~hopmem.finetune.cross_encoder`,
  :mod:`~hopmem.finetune.prorank`, :mod:`~hopmem.finetune.rank_r1`, :mod:`~hopmem.finetune.treehop_train`;
- their data and helpers: :mod:`~hopmem.finetune.reranker_data`, :mod:`~hopmem.finetune.treehop_data`,
  :mod:`~hopmem.finetune.grpo` (one GRPO run with TRL), :mod:`~hopmem.finetune.rewards`,
  :mod:`~hopmem.finetune.export` (half-precision copies of trained models).

It may import ``agents`` and ``memory``, never the SDK: what it shares with evaluation (BEIR data sets, query
splits, metrics, the run record) lives in ``memory``.
"""

from __future__ import annotations
