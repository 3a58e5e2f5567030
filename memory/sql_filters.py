"""Tenancy and search filters as SQL: the conditions every read path of the store puts inside its queries.

They live apart from the store so that everything reading the SQLite file by itself (the store's parts, the
in-process lexical index) applies exactly the same rules without importing the store: a tenant is required and is
never a wildcard, quarantined memories are invisible, and a :class:`~hopmem.memory.records.SearchFilter` means the
same thing for every retriever.
"""

from __future__ import annotations

from typing import Any

from hopmem.memory.errors import InputError
from hopmem.memory.records import SearchFilter

VISIBLE_SQL = "m.quarantined = 0"
"""The condition on ``memories m`` that every read path applies: quarantined memories (held for review by the
trust gate, :mod:`hopmem.memory.trust.gate`) are invisible until approved. It is part of :func:`filter_sql`, so any
search that takes its filter SQL honours it; a read path that does not must add it itself."""


def require_tenant(tenant: object) -> str:
    """Validate a tenant id: a non-empty string. There is no wildcard tenant."""
    if not isinstance(tenant, str) or not tenant.strip():
        raise InputError("A tenant is required (a non-empty string); pass tenant=... or set HOPMEM_TENANT.")
    return tenant


def filter_sql(filters: SearchFilter | None, *, visible_only: bool = True) -> tuple[str, list[Any]]:
    """SQL conditions on ``memories m`` for ``filters`` (prefixed with AND), and their parameters.

    Unless ``visible_only`` is False, the conditions include :data:`VISIBLE_SQL` (quarantined memories are hidden).
    """
    parts: list[str] = [VISIBLE_SQL] if visible_only else []
    params: list[Any] = []
    if filters is None or filters.empty:
        return "".join(f" AND {p}" for p in parts), params
    if filters.agent_id is not None:
        parts.append("m.agent_id = ?")
        params.append(filters.agent_id)
    if filters.source_classes:
        parts.append(f"m.source_class IN ({','.join('?' * len(filters.source_classes))})")
        params.extend(filters.source_classes)
    if filters.tags:
        parts.append(f"EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value IN ({','.join('?' * len(filters.tags))}))")
        params.extend(filters.tags)
    if filters.since is not None:
        parts.append("m.created_at >= ?")
        params.append(filters.since)
    if filters.until is not None:
        parts.append("m.created_at <= ?")
        params.append(filters.until)
    return "".join(f" AND {p}" for p in parts), params
