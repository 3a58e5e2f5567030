"""What every evaluation harness shares: the cached indexed corpus it runs on, and writing its report.

A report is one JSON object (the headline numbers, the settings and the run record of
:mod:`hopmem.memory.run_record`) with a per-query log beside it, one JSON line per query, so a headline can be
checked against the queries that make it up.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.memory.datasets.store_loader import open_indexed_corpus

if TYPE_CHECKING:
    from hopmem.memory.embeddings import Embedder
    from hopmem.memory.store import MemoryStore
    from hopmem.settings import Settings


def write_report(
    report: dict[str, Any],
    rows: Iterable[dict[str, Any]],
    json_out: Path | str | None,
    *,
    default: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """Write ``report`` to ``json_out`` and ``rows`` beside it as ``<stem>.queries.jsonl`` (one line per query).

    The log's file name (not its path, so reports hold no machine paths) is recorded as ``per_query_log``. Without
    ``json_out`` nothing is written. Returns the report.
    """
    if json_out is None or json_out == "":
        return report
    out = Path(json_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_name(out.stem + ".queries.jsonl")
    with log_path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, default=default) + "\n")
    report["per_query_log"] = log_path.name
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def indexed_corpus(root: Path, embedder: Embedder, settings: Settings, *, progress: bool) -> MemoryStore:
    """The cached, indexed store of a BEIR folder's corpus with the settings' chunking and bm25 weights."""
    return open_indexed_corpus(
        root,
        embedder,
        cache_dir=settings.cache_dir,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        title_weight=settings.bm25_title_weight,
        content_weight=settings.bm25_content_weight,
        progress=progress,
    )
