"""The reranker slot of the agent: one small contract, one module per backend, and a registry that builds them.

- :mod:`~hopmem.agents.rerank.base`: the :class:`Reranker` contract (``score`` / ``rank``), :func:`rank_by_scores`,
  :func:`passage_text` and the pass-through reranker (``none``);
- :mod:`~hopmem.agents.rerank.cross_encoder`: the MiniLM cross-encoder (``cross-encoder``, the default), with
  :mod:`~hopmem.agents.rerank.cross_encoder_pack` for the packed form the default ships in;
- :mod:`~hopmem.agents.rerank.pointwise`: the pointwise LLM reranker (``prorank``, ``prorank-base``);
- :mod:`~hopmem.agents.rerank.setwise`: the setwise reasoning reranker (``rank-r1``);
- :mod:`~hopmem.agents.rerank.served`: the pointwise reranker served by vLLM's OpenAI-compatible server;
- :mod:`~hopmem.agents.rerank.prompts`: the LLM rerankers' prompts, shared with training;
- :mod:`~hopmem.agents.rerank.model_paths`: where models are found (given folder, the user's training, the shipped);
- :mod:`~hopmem.agents.rerank.registry`: backend name -> class, imported lazily, and :func:`load_reranker`.

Importing this package loads no model library (torch, transformers, sentence-transformers load when a backend is
built); the shipped weights are package data in ``hopmem.agents.reranker_weights``.
"""

from __future__ import annotations

from hopmem.agents.rerank.base import PassThroughReranker, Reranker, passage_text, rank_by_scores
from hopmem.agents.rerank.registry import BACKENDS, RERANKERS, backend_class, load_reranker

__all__ = [
    "BACKENDS",
    "RERANKERS",
    "PassThroughReranker",
    "Reranker",
    "backend_class",
    "load_reranker",
    "passage_text",
    "rank_by_scores",
]
