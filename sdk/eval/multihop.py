"""Side-by-side evaluation of multi-hop retrieval: direct retrieval, TreeHop and iterative LLM rewriting.

All methods run on the same questions over the same indexed corpus (dense retrieval through the memory's vector
index). Recall is the share of a question's relevant documents among everything the method retrieved; "chunks" is how
many passages it retrieved. Every latency includes the question's embedding, measured once per question and added to
each method (each would compute the same vector). Questions the TreeHop model was trained or validated on (listed in
its ``data.json``) are skipped, so a model is never scored on what it learned from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.agents.multihop import HopResult, MemoryHopSearch, SearchFn, VectorsFn, hop_tree
from hopmem.agents.rewrite import llm_rewrite_retrieve
from hopmem.agents.treehop_model import TreeHopModel, load_treehop, packaged_model_dir
from hopmem.eval.report import indexed_corpus, write_report
from hopmem.memory.datasets.beir import load_dataset
from hopmem.memory.datasets.metrics import mean, percentiles
from hopmem.memory.datasets.store_loader import BEIR_TENANT
from hopmem.memory.embeddings import load_embedder
from hopmem.memory.errors import HopmemError, InputError
from hopmem.memory.hybrid import HybridSearcher
from hopmem.memory.run_record import RunRecord, cli_command
from hopmem.memory.vectors.registry import open_index
from hopmem.settings import Settings, get_settings

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hopmem.agents.llm.base import ChatLLM

log = logging.getLogger(__name__)


def trained_question_ids(model_dir: Path) -> set[str]:
    """The questions a TreeHop model was trained, validated or tested on (empty when its folder does not say)."""
    path = Path(model_dir) / "data.json"
    if not path.is_file():
        return set()
    data = json.loads(path.read_text(encoding="utf-8"))
    return set(data.get("train_ids", [])) | set(data.get("validation_ids", [])) | set(data.get("test_ids", []))


def _row(method: str, hops: int, top_n: int | None, per_query: Sequence[dict[str, float]]) -> dict[str, Any]:
    lat = percentiles([q["ms"] for q in per_query], (50, 95))
    return {
        "method": method,
        "hops": hops,
        "top_n": top_n,
        "recall": round(mean([q["recall"] for q in per_query]), 4),
        "avg_chunks": round(mean([q["chunks"] for q in per_query]), 2),
        "p50_ms": lat["p50"],
        "p95_ms": lat["p95"],
    }


def evaluate_multihop(
    dataset: Path | str,
    split: str,
    *,
    hops: int = 2,
    top_n: int = 5,
    settings: Settings | None = None,
    model_dir: Path | str | None = None,
    llm: ChatLLM | None = None,
    llm_baseline: bool = True,
    json_out: Path | str | None = None,
    progress: bool = True,
    max_queries: int | None = None,
) -> dict[str, Any]:
    """Run direct retrieval (k = 5, 10 and TreeHop's average), TreeHop (2 and 3 hops, untrained too) and LLM rewriting.

    Args:
        dataset: BEIR folder.
        split: qrels split whose questions are run.
        hops: TreeHop setting reported as ``treehop`` (rows for 2 and 3 hops are always there).
        top_n: passages per hop for TreeHop and the LLM baseline.
        settings: embedder, chunking, LLM and TreeHop settings (environment when omitted).
        model_dir: TreeHop model folder (default: ``settings.treehop_model``, else the packaged one).
        llm: the LLM of the rewrite baseline (default: the configured one).
        llm_baseline: run the LLM rewrite baseline.
        json_out: report path; the per-question log goes beside it as ``<stem>.queries.jsonl``.
        progress: progress bars.
        max_queries: only the first N questions (smoke tests).
    """
    from tqdm.auto import tqdm

    if hops < 2 or top_n < 1:
        raise InputError("TreeHop needs --hops of at least 2 and --top-n of at least 1.")
    settings = settings or get_settings()
    run = RunRecord(cli_command())
    root = Path(dataset)
    data = load_dataset(root, split)
    folder = Path(model_dir or settings.treehop_model or packaged_model_dir()).expanduser()
    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    model = load_treehop(folder, embedder=embedder.name, dim=embedder.dim)
    untrained = TreeHopModel(model.config)
    untrained.eval()
    seen_in_training = trained_question_ids(folder)
    questions = [q for q in data.queries if q.id not in seen_in_training]
    excluded = len(data.queries) - len(questions)
    questions = questions[:max_queries] if max_queries else questions
    if not questions:
        raise InputError(f"No question of {root} split {split!r} is left to evaluate (all were trained on).")
    baseline_note = None
    if llm_baseline and llm is None:
        from hopmem.agent_api import configured_llm

        try:
            llm = configured_llm(settings)
        except HopmemError as exc:
            baseline_note = f"LLM rewrite baseline skipped: {exc}"
        if llm is None and baseline_note is None:
            baseline_note = "LLM rewrite baseline skipped: no LLM configured (HOPMEM_LLM_BACKEND=none)"
    elif not llm_baseline:
        baseline_note = "LLM rewrite baseline switched off (--no-llm-baseline)"

    store = indexed_corpus(root, embedder, settings, progress=progress)
    index = open_index(store, settings.vector_backend, qdrant_location=":memory:")
    try:
        searcher = HybridSearcher(store, embedder, index=index)
        backend = MemoryHopSearch(store, index, BEIR_TENANT)
        doc_of: dict[int, str] = {}

        def docs(ids: Sequence[int]) -> list[str]:
            missing = [i for i in ids if i not in doc_of]
            for record in store.get(BEIR_TENANT, missing):
                doc_of[record.id] = record.external_id or str(record.id)
            return list(dict.fromkeys(doc_of[i] for i in ids if i in doc_of))

        def texts(ids: Sequence[int]) -> list[str]:
            return [f"{r.title}: {r.content}" if r.title else r.content for r in store.get(BEIR_TENANT, list(ids))]

        def recall(qid: str, ids: Sequence[int]) -> float:
            relevant = {d for d, g in data.qrels.get(qid, {}).items() if g > 0}
            return len(relevant & set(docs(ids))) / len(relevant) if relevant else 0.0

        searcher.embed_query(questions[0].text)  # warm-up: the query graph and the index load once
        backend.search(searcher.embed_query(questions[0].text).reshape(1, -1), 1)
        tree_settings = sorted({2, 3, hops})
        logs: list[dict[str, Any]] = []
        results: dict[str, list[dict[str, float]]] = {}
        for question in tqdm(questions, desc="treehop", unit="q", disable=not progress, leave=False):
            t0 = time.perf_counter()
            vector = searcher.embed_query(question.text)
            embed_ms = (time.perf_counter() - t0) * 1000
            entry: dict[str, Any] = {"query_id": question.id, "query": question.text, "embed_ms": round(embed_ms, 3)}
            for h in tree_settings:
                for name, net in (("treehop", model), ("treehop-untrained", untrained)):
                    if name == "treehop-untrained" and h != hops:
                        continue
                    tree = hop_tree(net, vector, backend.search, backend.vectors, top_n=top_n, hops=h)
                    key = f"{name}:{h}"
                    score = {"recall": recall(question.id, tree.ids), "chunks": len(tree.ids), "ms": embed_ms + tree.ms}
                    results.setdefault(key, []).append(score)
                    entry[key] = {**score, "tree": tree.to_dict()}
            entry["from_supporting"] = second_hop_from_supporting(
                model,
                vector,
                backend.search,
                backend.vectors,
                docs,
                {d for d, g in data.qrels.get(question.id, {}).items() if g > 0},
                top_n,
            )
            entry["_vector"] = vector
            logs.append(entry)
        avg = mean([r["chunks"] for r in results[f"treehop:{hops}"]])
        k_equal = max(1, round(avg))
        direct_ks = sorted({5, 10, k_equal})
        for entry in tqdm(logs, desc="direct", unit="q", disable=not progress, leave=False):
            vector = entry.pop("_vector")
            for k in direct_ks:
                t0 = time.perf_counter()
                hits = backend.search(vector.reshape(1, -1), k)[0]
                ms = (time.perf_counter() - t0) * 1000 + entry["embed_ms"]
                ids = [i for i, _ in hits]
                score = {"recall": recall(entry["query_id"], ids), "chunks": len(ids), "ms": ms}
                results.setdefault(f"direct:{k}", []).append(score)
                entry[f"direct:{k}"] = {**score, "ids": ids}
            entry["_vector"] = vector
        rows = [_row("direct", 1, k, results[f"direct:{k}"]) for k in direct_ks]
        rows += [_row("treehop", h, top_n, results[f"treehop:{h}"]) for h in tree_settings]
        rows.append(_row("treehop-untrained", hops, top_n, results[f"treehop-untrained:{hops}"]))
        llm_calls = 0
        if llm is not None and baseline_note is None:
            rewrite: list[dict[str, float]] = []
            for entry in tqdm(logs, desc="llm rewrite", unit="q", disable=not progress, leave=False):
                found: HopResult
                found, calls = llm_rewrite_retrieve(
                    llm,
                    entry["query"],
                    entry["_vector"],
                    backend.search,
                    searcher.embed_query,
                    texts,
                    top_n=top_n,
                    hops=hops,
                )
                llm_calls += len(calls)
                score = {
                    "recall": recall(entry["query_id"], found.ids),
                    "chunks": len(found.ids),
                    "ms": entry["embed_ms"] + found.ms,
                }
                rewrite.append(score)
                entry[f"llm-rewrite:{hops}"] = {**score, "calls": calls, "ids": found.ids}
            rows.append(_row("llm-rewrite", hops, top_n, rewrite))
        for entry in logs:
            entry.pop("_vector", None)
    finally:
        index.close()
        store.close()
    asked = next(r for r in rows if r["method"] == "treehop" and r["hops"] == hops)
    equal = next(r for r in rows if r["method"] == "direct" and r["top_n"] == k_equal)
    baseline = next((r for r in rows if r["method"] == "llm-rewrite"), None)
    report: dict[str, Any] = {
        "dataset": root.name,
        "split": split,
        "n_queries": len(questions),
        "excluded_trained_questions": excluded,
        "rows": rows,
        "treehop": {"recall": asked["recall"], "avg_chunks": asked["avg_chunks"], "p50_ms": asked["p50_ms"]},
        "direct_at_equal_chunks": {"k": k_equal, "recall": equal["recall"]},
        "recall_gain_over_direct": round(asked["recall"] - equal["recall"], 4),
        "hop_from_supporting_passage": _summarise_from_supporting([e["from_supporting"] for e in logs]),
        "latency_share_of_llm_rewrite": round(asked["p50_ms"] / baseline["p50_ms"], 5) if baseline else None,
        "llm_calls": llm_calls,
        "llm_baseline_note": baseline_note,
        "model": {
            "folder": folder.name,
            "config": asdict(model.config),
            "parameters": model.n_parameters(),
            "weights_sha256": _sha256(folder / "model.safetensors"),
        },
        "llm": getattr(llm, "name", None) if baseline else None,
        "settings": {k: settings.effective()[k] for k in ("embedder", "chunk_size", "chunk_overlap", "vector_backend")},
        **run.finish(),
    }
    return write_report(report, logs, json_out, default=_json_default)


def second_hop_from_supporting(
    model: TreeHopModel,
    vector: NDArray[np.float32],
    search: SearchFn,
    vectors: VectorsFn,
    docs: Callable[[Sequence[int]], list[str]],
    relevant: set[str],
    top_n: int,
) -> dict[str, Any] | None:
    """The second hop on its own, started from the right passage.

    When the first hop (``top_n`` passages) found some but not all relevant documents, each relevant passage it found
    is turned into a next query, by the model and, for comparison, by asking the question again (the untrained
    model); a missing document counts as found by a method when one of these next queries retrieves it among its
    ``top_n`` new passages. This separates the learned next query from the tree's pruning, which must also pick the
    right parents. ``docs`` maps passage ids to their documents. Returns None for questions the diagnostic does not
    apply to, else the number of missing documents and how many of them each method found.
    """
    first = [i for i, _ in search(vector.reshape(1, -1), top_n)[0]]
    parents = [i for i in first if docs([i])[0] in relevant]
    missing = relevant - set(docs(first))
    if not parents or not missing:
        return None
    seen = set(first)
    queries = {"question": np.repeat(vector.reshape(1, -1), len(parents), axis=0)}
    queries["treehop"] = model.next_queries(queries["question"], vectors(parents))
    found: dict[str, int] = {}
    for name, batch in queries.items():
        hits = search(batch, top_n + len(seen))
        fresh = {i for row in hits for i in [i for i, _ in row if i not in seen][:top_n]}
        found[name] = len(missing & set(docs(sorted(fresh))))
    return {"missing": len(missing), **found}


def _summarise_from_supporting(entries: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Share of missing documents each next query found, over the questions the diagnostic applies to."""
    used = [e for e in entries if e]
    total = sum(e["missing"] for e in used)
    shares = {name: round(sum(e[name] for e in used) / total, 4) if total else None for name in ("question", "treehop")}
    return {"questions": len(used), "missing_documents": total, "found_share": shares}


def _json_default(value: object) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _sha256(path: Path) -> str | None:
    """The weights' digest, so a report names exactly which model it measured."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
