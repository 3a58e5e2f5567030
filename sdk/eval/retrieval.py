"""Evaluation harness: index a BEIR data set in a fresh temporary store, run its queries, report metrics.

Reports record what produced them: the data set's hash, the settings and the run record
(:mod:`hopmem.memory.run_record`: git revision, machine, library versions, command, start and end time).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from hopmem.eval.report import write_report
from hopmem.memory.datasets.beir import load_dataset
from hopmem.memory.datasets.metrics import mean, percentiles, retrieval_metrics
from hopmem.memory.embeddings import load_embedder
from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import HybridSearcher
from hopmem.memory.ingest import Ingestor
from hopmem.memory.run_record import RunRecord, cli_command
from hopmem.memory.store import MemoryStore
from hopmem.memory.vectors.registry import open_index
from hopmem.settings import Settings, get_settings

log = logging.getLogger(__name__)

RETRIEVAL_METHODS = {"bm25": "lexical", "dense": "dense", "hybrid": "hybrid"}
EVAL_TENANT = "eval"


def evaluate_retrieval(
    dataset: Path | str,
    split: str,
    method: str,
    *,
    k: int = 10,
    settings: Settings | None = None,
    json_out: Path | str | None = None,
    progress: bool = True,
    max_queries: int | None = None,
) -> dict[str, Any]:
    """Evaluate one retrieval method on a BEIR folder.

    Args:
        dataset: folder with ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.
        split: the qrels split whose queries are run.
        method: ``bm25``, ``dense`` or ``hybrid``.
        k: documents retrieved per query (metrics are taken at 5 and 10, and at ``k``).
        settings: embedder, chunking and fusion settings (environment when omitted).
        json_out: where the report goes; the per-query log goes beside it as ``<stem>.queries.jsonl``.
        progress: show progress bars.
        max_queries: evaluate only the first N judged queries (for smoke tests).

    Returns:
        The report (also written to ``json_out``).
    """
    if method not in RETRIEVAL_METHODS:
        raise InputError(f"Unknown method {method!r}; use one of {', '.join(RETRIEVAL_METHODS)}.")
    if k < 1:
        raise InputError("k must be at least 1.")
    settings = settings or get_settings()
    run = RunRecord(cli_command())
    data = load_dataset(Path(dataset), split)
    queries = data.queries[:max_queries] if max_queries else data.queries
    if not queries:
        raise InputError(f"No query of {dataset} is judged in split {split!r}; check the qrels file.")
    mode = RETRIEVAL_METHODS[method]
    embedder = None
    if mode != "lexical":
        embedder = load_embedder(
            settings.embedder,
            **settings.embedder_options(),
        )
    depth = max(k, 10)
    per_query: list[dict[str, Any]] = []
    index = None
    with tempfile.TemporaryDirectory(prefix="hopmem-eval-") as tmp:
        store = MemoryStore(
            Path(tmp) / "eval.sqlite",
            title_weight=settings.bm25_title_weight,
            content_weight=settings.bm25_content_weight,
        )
        try:
            started = time.perf_counter()
            ingestor = Ingestor(
                store,
                embedder,
                chunk_size=settings.chunk_size,
                chunk_overlap=settings.chunk_overlap,
                max_content_chars=max(settings.max_content_chars, 10_000_000),
            )
            report = ingestor.ingest(EVAL_TENANT, [Path(dataset) / "corpus.jsonl"], progress=progress)
            if report.errors:
                raise InputError(f"Indexing {dataset} failed: {report.errors[0][1]}")
            index_s = time.perf_counter() - started
            index = None
            if embedder is not None:
                index = open_index(
                    store,
                    settings.vector_backend,
                    qdrant_location=":memory:" if settings.vector_backend == "qdrant" else "",
                    qdrant_collection=settings.qdrant_collection,
                )
            searcher = HybridSearcher(
                store,
                embedder,
                index=index,
                fusion=settings.fusion,
                rrf_k=settings.rrf_k,
                depth=max(settings.retrieve_depth, depth * 3),
            )
            searcher.search(EVAL_TENANT, queries[0].text, k=1, mode=mode)  # warm-up: first call loads the index
            from tqdm.auto import tqdm

            for query in tqdm(queries, desc=f"{method} queries", unit="q", disable=not progress, leave=False):
                t0 = time.perf_counter()
                results = searcher.search(EVAL_TENANT, query.text, k=depth * 3, mode=mode)
                ms = (time.perf_counter() - t0) * 1000
                ranked = _documents_in_order([r.record.external_id for r in results])[:depth]
                judged = data.qrels.get(query.id, {})
                scores = retrieval_metrics(ranked, judged)
                if k != 10:
                    from hopmem.memory.datasets.metrics import ndcg_at_k, recall_at_k

                    scores[f"ndcg@{k}"] = ndcg_at_k(ranked, judged, k)
                    scores[f"recall@{k}"] = recall_at_k(ranked, judged, k)
                per_query.append(
                    {
                        "query_id": query.id,
                        "query": query.text,
                        "ranked": ranked[:k],
                        "relevant": sorted(d for d, g in judged.items() if g > 0),
                        "metrics": {m: round(v, 4) for m, v in scores.items()},
                        "ms": round(ms, 3),
                    }
                )
        finally:
            if index is not None:
                index.close()
            store.close()
    metric_names = list(per_query[0]["metrics"])
    result: dict[str, Any] = {
        "dataset": str(dataset),
        "split": split,
        "method": method,
        "n_queries": len(per_query),
        "k": k,
        "metrics": {m: round(mean([q["metrics"][m] for q in per_query]), 4) for m in metric_names},
        "latency_ms": percentiles([q["ms"] for q in per_query], (50, 95)),
        "index_seconds": round(index_s, 2),
        "corpus_docs": len(data.corpus),
        "dataset_sha256": data.fingerprint(),
        "settings": {
            key: settings.effective()[key]
            for key in (
                "embedder",
                "chunk_size",
                "chunk_overlap",
                "fusion",
                "rrf_k",
                "bm25_title_weight",
                "bm25_content_weight",
                "embed_max_seq_length",
                "vector_backend",
            )
        },
        **run.finish(),
    }
    return write_report(result, per_query, json_out)


def _documents_in_order(external_ids: list[str | None]) -> list[str]:
    """Chunk hits to document ids: a document ranks where its best chunk ranks."""
    seen: dict[str, None] = {}
    for doc_id in external_ids:
        if doc_id is not None:
            seen.setdefault(doc_id, None)
    return list(seen)
