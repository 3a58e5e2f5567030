"""Row helpers shared by the store's parts: the content hash, a memory row as a record, ids for the audit log."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence

from hopmem.memory.records import MemoryRecord

RECORD_SELECT = (
    "SELECT m.*, d.source AS source, d.external_id AS external_id FROM memories m"
    " LEFT JOIN documents d ON d.id = m.document_id"
)
"""The start of every query that reads whole memories for :func:`record_from_row` (its WHERE clause follows)."""


def content_hash(text: str) -> str:
    """The SHA-256 hex digest of ``text`` as stored in ``content_hash`` (the key of duplicate detection)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_from_row(row: sqlite3.Row) -> MemoryRecord:
    """A memory row (``memories m`` with the document's ``source`` and ``external_id``) as a :class:`MemoryRecord`."""
    return MemoryRecord(
        id=int(row["id"]),
        tenant=row["tenant"],
        title=row["title"],
        content=row["content"],
        source_class=row["source_class"],
        document_id=row["document_id"],
        chunk_index=row["chunk_index"],
        source=row["source"],
        external_id=row["external_id"],
        tags=json.loads(row["tags"]),
        metadata=json.loads(row["metadata"]),
        agent_id=row["agent_id"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        last_accessed=None if row["last_accessed"] is None else float(row["last_accessed"]),
        access_count=int(row["access_count"]),
        importance=float(row["importance"]),
        content_hash=row["content_hash"],
        provenance=json.loads(row["provenance"]),
        quarantined=bool(row["quarantined"]),
    )


def id_summary(ids: Sequence[int]) -> list[int] | dict[str, int]:
    """Ids for the audit log: the list when short, else first/last/count (the log must stay small)."""
    if len(ids) <= 100:
        return list(ids)
    return {"first": min(ids), "last": max(ids), "count": len(ids)}
