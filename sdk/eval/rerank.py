"""Reranker evaluation (``hopmem eval rerank``): retrieve candidates, rerank them, score the new order.

For every query of the split, the memory's own retrieval (``bm25``, ``dense`` or ``hybrid``, over the corpus indexed
once into the cache) gives the top ``depth`` documents (each read as its best-ranked chunk); each reranker re-orders
them and nDCG@10, recall@10 and MRR@10 are taken over the new order. ``none`` keeps the candidates' own order, so
one report compares retrieval alone with every reranker on the same candidates and the same queries. With
``baselines`` the other retrieval methods' own orders are added as rows too.

Latency per query is retrieval plus reranking (the query's embedding included), one query at a time, after one
untimed warm-up query per row. Queries a trained cross-encoder was trained on (listed in its ``data.json``) are
skipped for every row. A split that is not a qrels file may be a derived one (``train``/``dev`` of a folder with
one qrels split, e.g. Cranfield's queries 101-150 as ``dev``; see :mod:`hopmem.finetune.reranker_data`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hopmem.agents.rerank import PassThroughReranker, Reranker, load_reranker, passage_text
from hopmem.agents.rerank.cross_encoder import CrossEncoderReranker, init_cross_encoder
from hopmem.agents.rerank.model_paths import (
    default_cross_encoder_dir,
    find_adapter,
    find_cross_encoder,
    is_cross_encoder_dir,
)
from hopmem.eval.report import indexed_corpus, write_report
from hopmem.memory.datasets.beir import dataset_hash
from hopmem.memory.datasets.metrics import mean, percentiles, recall_at_k, retrieval_metrics
from hopmem.memory.datasets.splits import load_split, query_splits
from hopmem.memory.datasets.store_loader import BEIR_TENANT
from hopmem.memory.embeddings import load_embedder
from hopmem.memory.errors import ConfigError, InputError
from hopmem.memory.hybrid import HybridSearcher
from hopmem.memory.model_paths import display_path, resolve_embedder_path
from hopmem.memory.run_record import RunRecord, cli_command
from hopmem.memory.vectors.registry import open_index
from hopmem.settings import Settings, get_settings

log = logging.getLogger(__name__)

CANDIDATE_METHODS = {"bm25": "lexical", "dense": "dense", "hybrid": "hybrid"}
UNTRAINED = "cross-encoder-untrained"
ALONE = "cross-encoder-alone"
"""The trained cross-encoder without its blend with the candidates' order (its own scores only)."""
LLM_RERANKERS = ("prorank", "prorank-base", "rank-r1")
PRORANK_ALONE = "prorank-alone"
"""The prorank adapter without its blend with the candidates' order (the model's own scores only)."""
EVAL_RERANKERS = ("none", "cross-encoder", ALONE, UNTRAINED, *LLM_RERANKERS, PRORANK_ALONE)
METRICS = ("ndcg@10", "recall@10", "mrr@10")


def trained_query_ids(model_dir: Path, dataset_name: str) -> set[str]:
    """The queries of ``dataset_name`` a cross-encoder was trained on (its ``data.json``; empty when absent)."""
    path = Path(model_dir) / "data.json"
    if not path.is_file():
        return set()
    record = json.loads(path.read_text(encoding="utf-8"))
    return {q for d in record.get("datasets", []) if d.get("dataset") == dataset_name for q in d.get("train_ids", [])}


def _cross_encoder_folder(location: str | Path | None, cache_dir: Path) -> Path:
    """The cross-encoder the evaluation means (``find_cross_encoder``'s lookup); a missing one is reported when a
    row needs it, by the reranker's own error."""
    try:
        return find_cross_encoder(location, cache_dir)
    except ConfigError:
        return Path(location).expanduser() if location else default_cross_encoder_dir(cache_dir)


def _build_reranker(name: str, model_dir: Path, settings: Settings, adapters: dict[str, Path]) -> Reranker:
    if name == "none":
        return PassThroughReranker()
    if name in LLM_RERANKERS:
        return load_reranker(
            name,
            adapters.get("prorank" if name == "prorank-base" else name),
            cache_dir=settings.cache_dir,
            batch_size=settings.rerank_batch_size,
            server=settings.reranker_server,
            served_model=settings.reranker_served_model,
        )
    if name == PRORANK_ALONE:
        from hopmem.agents.rerank.pointwise import PointwiseLLMReranker

        return PointwiseLLMReranker(
            adapter=adapters["prorank"], batch_size=settings.rerank_batch_size, name=PRORANK_ALONE, blend=0.0
        )
    if name == "cross-encoder":
        return load_reranker(name, model_dir, cache_dir=settings.cache_dir, batch_size=settings.rerank_batch_size)
    if name == ALONE:
        return CrossEncoderReranker(model_dir, batch_size=settings.rerank_batch_size, name=ALONE, blend=0.0)
    if name == UNTRAINED:
        base = resolve_embedder_path(settings.embedder)
        # The same start as training (seed 0, fresh head) and the same pair length as the trained model.
        length = CrossEncoderReranker(model_dir).max_length if is_cross_encoder_dir(model_dir) else None
        model = init_cross_encoder(base, seed=0, **({"max_length": length} if length else {}))
        return CrossEncoderReranker(base, model=model, batch_size=settings.rerank_batch_size, name=UNTRAINED)
    raise InputError(f"Unknown reranker {name!r}; use one of {', '.join(EVAL_RERANKERS)}.")


def _row(
    dataset: str, split: str, candidates: str, reranker: str, per_query: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "split": split,
        "candidates": candidates,
        "reranker": reranker,
        "n_queries": len(per_query),
        "metrics": {m: round(mean([q["metrics"][m] for q in per_query]), 4) for m in METRICS},
        "candidate_recall": round(mean([q["candidate_recall"] for q in per_query]), 4),
        "latency_ms": percentiles([q["ms"] for q in per_query], (50, 95)),
        "rerank_latency_ms": percentiles([q["rerank_ms"] for q in per_query], (50, 95)),
    }


def evaluate_rerank(
    dataset: Path | str,
    split: str,
    rerankers: Sequence[str] = ("cross-encoder",),
    *,
    candidates: str = "hybrid",
    depth: int = 30,
    baselines: bool = False,
    settings: Settings | None = None,
    model_dir: Path | str | None = None,
    adapter: Path | str | None = None,
    rank_r1_adapter: Path | str | None = None,
    json_out: Path | str | None = None,
    plot_out: Path | str | None = None,
    progress: bool = True,
    max_queries: int | None = None,
) -> dict[str, Any]:
    """Rerank the top ``depth`` candidates of every query of ``split`` with each reranker and report the metrics.

    Args:
        dataset: BEIR folder.
        split: a qrels split, or a derived ``train``/``dev`` split.
        rerankers: names to compare (``none``, ``cross-encoder``, ``cross-encoder-alone``,
            ``cross-encoder-untrained``, ``prorank``, ``prorank-base``, ``prorank-alone`` (the adapter without its
            blend), ``rank-r1``); the first is the report's
            headline (its top-level ``reranker``, ``metrics`` and ``latency_ms``).
        candidates: the retrieval that gives the candidates (``bm25``, ``dense``, ``hybrid``).
        depth: candidates per query.
        baselines: add the other retrieval methods' own order as rows.
        settings: embedder, chunking, fusion and reranker settings (environment when omitted).
        model_dir: the cross-encoder folder (default ``settings.reranker_model``, else the default one in the cache).
        adapter: the LoRA adapter of ``prorank`` (default: the user's trained one in the cache, else the shipped
            one); ``prorank-base`` is the same model without it.
        rank_r1_adapter: the LoRA adapter of ``rank-r1`` (found the same way).
        json_out: report path; the per-query log goes beside it as ``<stem>.queries.jsonl``.
        plot_out: a PNG of the rows' nDCG@10, recall@10 and latency (:func:`hopmem.eval.plots.plot_rerank_report`).
        progress: progress bars.
        max_queries: only the first N queries (smoke tests).

    Returns:
        The report (also written to ``json_out``).

    Raises:
        InputError: on an unknown reranker or candidate method, or a split with no query left to evaluate.
        ConfigError: when the cross-encoder is not on disk.
    """
    from tqdm.auto import tqdm

    names = list(dict.fromkeys(r.strip() for r in rerankers if r.strip())) or ["none"]
    for name in names:
        if name not in EVAL_RERANKERS:
            raise InputError(f"Unknown reranker {name!r}; use one of {', '.join(EVAL_RERANKERS)}.")
    if candidates not in CANDIDATE_METHODS:
        raise InputError(f"Unknown candidates {candidates!r}; use one of {', '.join(CANDIDATE_METHODS)}.")
    if depth < 1:
        raise InputError("--depth must be at least 1.")
    settings = settings or get_settings()
    run = RunRecord(cli_command())
    root = Path(dataset)
    folder = _cross_encoder_folder(model_dir or settings.reranker_model, settings.cache_dir)
    adapters: dict[str, Path] = {}
    if {"prorank", PRORANK_ALONE} & set(names) or ("prorank-base" in names and adapter):
        adapters["prorank"] = find_adapter("prorank", adapter, settings.cache_dir)
    if "rank-r1" in names:
        adapters["rank-r1"] = find_adapter("rank-r1", rank_r1_adapter, settings.cache_dir)
    built = {name: _build_reranker(name, folder, settings, adapters) for name in names}  # fails early when missing
    queries, qrels, split_source = load_split(root, split)
    skip = trained_query_ids(folder, root.resolve().name) if {"cross-encoder", ALONE} & set(names) else set()
    for trained in adapters.values():
        skip |= trained_query_ids(trained, root.resolve().name)
    kept = [(q, text) for q, text in queries if q not in skip]
    excluded = len(queries) - len(kept)
    kept = kept[:max_queries] if max_queries else kept
    if not kept:
        raise InputError(f"No query of {root} split {split!r} is left to evaluate (a reranker was trained on all).")
    methods = [candidates] + ([m for m in CANDIDATE_METHODS if m != candidates] if baselines else [])
    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    store = indexed_corpus(root, embedder, settings, progress=progress)
    index = open_index(store, settings.vector_backend, qdrant_location=":memory:")
    logs: dict[str, dict[str, Any]] = {q: {"query_id": q, "query": text} for q, text in kept}
    rows: list[dict[str, Any]] = []
    try:
        searcher = HybridSearcher(
            store,
            embedder,
            index=index,
            fusion=settings.fusion,
            rrf_k=settings.rrf_k,
            depth=max(settings.retrieve_depth, depth * 3),
        )
        for method in methods:
            mode = CANDIDATE_METHODS[method]
            searcher.search(BEIR_TENANT, kept[0][1], k=1, mode=mode)  # warm-up: loads the index and query runtime
            pool: dict[str, tuple[list[str], list[str], float]] = {}
            for qid, text in tqdm(kept, desc=f"{method} candidates", unit="q", disable=not progress, leave=False):
                t0 = time.perf_counter()
                hits = searcher.search(BEIR_TENANT, text, k=depth * 3, mode=mode)
                ms = (time.perf_counter() - t0) * 1000
                docs: dict[str, str] = {}
                for hit in hits:
                    doc = hit.record.external_id or str(hit.record.id)
                    if doc not in docs and len(docs) < depth:
                        docs[doc] = passage_text(hit.record.title, hit.record.content)
                pool[qid] = (list(docs), list(docs.values()), ms)
            for name in names if method == candidates else ["none"]:
                reranker = built[name]
                reranker.rank(kept[0][1], pool[kept[0][0]][1][:4])  # warm-up
                per_query: list[dict[str, Any]] = []
                label = f"{method}+{name}"
                for qid, text in tqdm(kept, desc=label, unit="q", disable=not progress, leave=False):
                    doc_ids, texts, retrieve_ms = pool[qid]
                    t0 = time.perf_counter()
                    ranked = reranker.rank(text, texts)
                    rerank_ms = (time.perf_counter() - t0) * 1000
                    order = [doc_ids[i] for i, _ in ranked]
                    judged = qrels.get(qid, {})
                    scores = retrieval_metrics(order, judged)
                    entry = {
                        "metrics": {m: round(scores[m], 4) for m in METRICS},
                        "candidate_recall": recall_at_k(doc_ids, judged, len(doc_ids)) if doc_ids else 0.0,
                        "ms": round(retrieve_ms + rerank_ms, 3),
                        "rerank_ms": round(rerank_ms, 3),
                    }
                    per_query.append(entry)
                    logs[qid][label] = {**entry, "ranked": order[:10]}
                rows.append(_row(root.name, split, method, name, per_query))
    finally:
        index.close()
        store.close()
    headline = rows[0]
    model_info: dict[str, Any] | None = None
    if {"cross-encoder", ALONE, UNTRAINED} & set(names):
        metrics_path = folder / "metrics.json"
        trained = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
        model_info = {
            "folder": display_path(folder),
            "max_length": getattr(
                built.get("cross-encoder") or built.get(ALONE) or built.get(UNTRAINED), "max_length", None
            ),
            "blend": getattr(built.get("cross-encoder"), "blend", None),
            "base_model": settings.embedder,
            "trained_on": trained.get("splits"),
            "train_pairs": trained.get("train_pairs"),
            "train_seconds": (trained.get("seconds") or {}).get("total"),
            "train_command": trained.get("command"),
        }
    adapter_info = {recipe: _adapter_info(path, built.get(recipe)) for recipe, path in adapters.items()}
    derived = not (root / "qrels" / f"{split}.tsv").is_file()
    source_split = query_splits(root).source.get(split, split) if derived else split
    report: dict[str, Any] = {
        "dataset": root.name,
        "split": split,
        "reranker": headline["reranker"],
        "candidates": candidates,
        "depth": depth,
        "n_queries": headline["n_queries"],
        "metrics": headline["metrics"],
        "latency_ms": headline["latency_ms"],
        "results": rows,
        "split_source": split_source,
        "excluded_trained_queries": excluded,
        "dataset_sha256": dataset_hash(root, source_split),
        "model": model_info,
        "adapters": adapter_info or None,
        "settings": {
            key: settings.effective()[key]
            for key in ("embedder", "chunk_size", "chunk_overlap", "fusion", "rrf_k", "vector_backend")
        }
        | {"rerank_batch_size": settings.rerank_batch_size},
        **run.finish(),
    }
    written = write_report(report, logs.values(), json_out)
    if plot_out:
        from hopmem.eval.plots import plot_rerank_report

        plot_rerank_report(written, plot_out)
    return written


def _adapter_info(folder: Path, reranker: Reranker | None) -> dict[str, Any]:
    """What the report records of a LoRA reranker: its folder, base, prompt budget and how it was trained."""
    from hopmem.agents.rerank.model_paths import read_reranker_record

    metrics_path = folder / "metrics.json"
    trained = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    return {
        "folder": display_path(folder),
        **read_reranker_record(folder),
        "batch_size": getattr(reranker, "batch_size", None),
        "train_seconds": (trained.get("seconds") or {}).get("total"),
        "train_command": trained.get("command"),
        "dev_pairs_before": trained.get("dev_before"),
        "dev_pairs_after": trained.get("dev_after"),
    }
