"""Index a BEIR corpus once and compare the dense rankings of the exact and the qdrant vector backends.

Both backends get the same query vector, so any difference is the backend's. Writes a JSON report:
how many queries have identical top-k ids, identical top-k sets, and the largest score difference.

Usage: python tools/compare_backends.py DATASET_DIR SPLIT OUT.json [--k 10]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

from hopmem.memory.datasets.beir import load_dataset
from hopmem.memory.embeddings import load_embedder
from hopmem.memory.ingest import Ingestor
from hopmem.memory.run_record import RunRecord
from hopmem.memory.store import MemoryStore
from hopmem.memory.vectors.registry import open_index
from hopmem.settings import get_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("split")
    parser.add_argument("out", type=Path)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    settings = get_settings()
    run = RunRecord(shlex.join(sys.argv))
    data = load_dataset(args.dataset, args.split)
    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore(Path(tmp) / "s.sqlite")
        Ingestor(store, embedder, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap).ingest(
            "eval", [args.dataset / "corpus.jsonl"], progress=True
        )
        exact = open_index(store, "exact")
        qdrant = open_index(store, "qdrant", qdrant_location=":memory:")
        same_order = same_set = 0
        max_diff = 0.0
        rows = []
        started = time.perf_counter()
        for query in data.queries:
            vector = embedder.embed_query(query.text)
            a, b = exact.search("eval", vector, args.k), qdrant.search("eval", vector, args.k)
            ids_a, ids_b = [h.memory_id for h in a], [h.memory_id for h in b]
            same_order += ids_a == ids_b
            same_set += set(ids_a) == set(ids_b)
            diff = max((abs(x.score - y.score) for x, y in zip(a, b, strict=True)), default=0.0)
            max_diff = max(max_diff, diff)
            if ids_a != ids_b:
                rows.append({"query_id": query.id, "exact": ids_a, "qdrant": ids_b})
        report = {
            "dataset": str(args.dataset),
            "split": args.split,
            "k": args.k,
            "n_queries": len(data.queries),
            "identical_ranking": same_order,
            "identical_set": same_set,
            "max_score_diff": max_diff,
            "differences": rows,
            "seconds": round(time.perf_counter() - started, 1),
            **run.finish(),
        }
        exact.close()
        qdrant.close()
        store.close()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("differences", "machine")}))


if __name__ == "__main__":
    main()
