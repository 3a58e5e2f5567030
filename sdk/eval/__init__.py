"""hopmem.eval: the evaluation harnesses behind ``hopmem eval`` and the reports they write.

- :mod:`~hopmem.eval.retrieval`: one retrieval method (bm25, dense, hybrid) on a BEIR folder;
- :mod:`~hopmem.eval.rerank`: rerankers on the same candidates of a held-out split;
- :mod:`~hopmem.eval.qa`: the agent's answers, piece by piece (planner, hop, reranker, LLM);
- :mod:`~hopmem.eval.multihop`: TreeHop's second hop on multi-hop questions;
- :mod:`~hopmem.eval.memory`: conversation memory on LoCoMo-format chats (recall over turns per category, latency,
  the agent's F1), methods side by side; :mod:`~hopmem.eval.memory_plot` draws its report;
- :mod:`~hopmem.eval.plots`: the PNG drawn from a rerank report.

The data sets, splits and metrics they score with live in :mod:`hopmem.memory.datasets`, shared with the trainers.
This package ``__init__`` imports nothing, so that importing one harness loads only what that harness needs.
"""
