"""What every integration shares: the metadata a hopmem passage carries into a framework, one lock per memory,
and the install hint for a missing framework."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from hopmem.memory.records import MemoryRecord, SearchResult
from hopmem.memory_api import Memory

_LOCKS: weakref.WeakKeyDictionary[Memory, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def memory_lock(memory: Memory) -> threading.RLock:
    """The lock that serialises integration calls on ``memory``.

    Frameworks call a retriever or a tool from worker threads (LlamaIndex's ``aretrieve`` here, LangGraph's
    ``ToolNode`` running several tool calls at once), while one ``Memory`` holds one SQLite connection: every object
    of this package takes this lock around its calls, so two of them over the same memory never interleave.
    """
    with _LOCKS_GUARD:
        lock = _LOCKS.get(memory)
        if lock is None:
            lock = _LOCKS[memory] = threading.RLock()
        return lock


def missing_framework(package: str, module: str) -> ImportError:
    """The error raised when ``module`` cannot be imported: one sentence naming the package to install."""
    return ImportError(
        f"hopmem.integrations needs {package} for this ({module} could not be imported); "
        f"install it with: pip install {package}"
    )


def record_metadata(record: MemoryRecord, *, trust: float | None) -> dict[str, Any]:
    """The metadata of a memory as a framework document carries it: JSON values only, the same keys everywhere.

    ``hopmem_id`` is the id to pass back to :meth:`hopmem.Memory.get`, ``feedback`` or ``erase``; ``trust`` the
    memory's trust (the lowest along its provenance chain, what search weighs the score by); ``source`` the file an
    ingested chunk came from, or the source a write named; ``agent`` the writer (None for the user and documents).
    """
    return {
        "hopmem_id": record.id,
        "title": record.title,
        "source": record.source,
        "source_class": record.source_class,
        "agent": record.agent_id,
        "trust": None if trust is None else round(float(trust), 4),
        "tags": list(record.tags),
        "document_id": record.document_id,
        "chunk_index": record.chunk_index,
        "external_id": record.external_id,
        "created_at": record.created_at,
    }


def result_metadata(result: SearchResult) -> dict[str, Any]:
    """:func:`record_metadata` of a search result, with its fused ``score`` and each retriever's rank (``ranks``)."""
    return {
        **record_metadata(result.record, trust=result.trust),
        "score": round(float(result.score), 6),
        "ranks": dict(result.ranks),
    }


def passage_line(metadata: dict[str, Any]) -> str:
    """The header a tool shows an LLM before a passage's text: id, title, trust and where it came from."""
    trust = metadata.get("trust")
    parts = [f"id {metadata['hopmem_id']}"]
    if metadata.get("title"):
        parts.append(f"title {metadata['title']!r}")
    parts.append("trust " + ("unknown" if trust is None else f"{trust:.2f}"))
    origin = metadata.get("source") or metadata.get("agent") or metadata.get("source_class")
    if origin:
        parts.append(f"from {origin}")
    return "[" + "; ".join(parts) + "]"
