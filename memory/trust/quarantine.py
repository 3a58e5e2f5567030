"""The quarantine of held writes: list them for review, approve them (they become visible) or reject them.

A quarantined memory has its row in ``memories`` with ``quarantined = 1`` (every read path skips it, see
``hopmem.memory.store.VISIBLE_SQL``) and a row in ``quarantine`` with the reason, the writer's trust when it was
held, and its embedding, kept out of the ``embeddings`` table so that no vector index (exact or Qdrant) can return
it. Approval moves the vector into ``embeddings`` and moves the store's vector epoch, so that every derived index
picks it up (its id is older than the newest vector, so an append-only refresh would miss it). Rejection is an
erasure through the one erase path (``hopmem.Memory.reject``), so nothing of the text is left. The review's trust
signals (``approved``, ``rejected`` for the writer) commit in the approval's or the erase's own transaction.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hopmem.memory.db import write_transaction
from hopmem.memory.errors import InputError
from hopmem.memory.records import MemoryRecord
from hopmem.memory.store import EraseHook, MemoryStore, require_tenant
from hopmem.memory.trust.model import TrustModel

CONFLICT = re.compile(r"trusted memory (\d+)")
"""How the write gate's hold reason names the memory a held write contradicts (:mod:`hopmem.memory.trust.gate`)."""


def list_quarantine(
    store: MemoryStore, tenant: str, *, limit: int = 1000, group_similarity: float = 1.0
) -> list[dict[str, Any]]:
    """The held memories of ``tenant``, oldest first: id, agent, reason, when, title, content, ``conflicts_with``
    and ``group``.

    ``conflicts_with`` is the visible memory a write was held for contradicting (``{"id", "content"}``), else None:
    the reviewer judges the two side by side, since approving the held text says the other one is wrong.
    ``group`` is the id of the earliest held write of the same agent whose embedding is at least
    ``group_similarity`` close (cosine) to this one's, or this write's own id: near-duplicates one agent wrote (a
    flood) form one review item, judged once (see :func:`review_groups`); 1.0 or more groups only identical vectors.
    """
    require_tenant(tenant)
    rows = store.conn.execute(
        "SELECT q.memory_id, q.agent_id, q.reason, q.at, m.title, m.content, m.source_class, m.tags, q.vector"
        " FROM quarantine q JOIN memories m ON m.id = q.memory_id"
        " WHERE q.tenant = ? ORDER BY q.memory_id LIMIT ?",
        (tenant, int(limit)),
    ).fetchall()
    named = {int(m.group(1)) for r in rows if r[2] and (m := CONFLICT.search(r[2]))}
    shown = {r.id: r.content for r in store.get(tenant, sorted(named))} if named else {}
    groups = _groups([(int(r[0]), r[1], r[8]) for r in rows], group_similarity)
    held: list[dict[str, Any]] = []
    for r in rows:
        match = CONFLICT.search(r[2] or "")
        other = int(match.group(1)) if match else None
        held.append(
            {
                "id": int(r[0]),
                "agent": r[1],
                "reason": r[2],
                "at": float(r[3]),
                "title": r[4],
                "content": r[5],
                "source_class": r[6],
                "tags": json.loads(r[7]),
                "conflicts_with": {"id": other, "content": shown[other]} if other in shown else None,
                "group": groups[int(r[0])],
            }
        )
    return held


def _groups(rows: Sequence[tuple[int, str | None, bytes | None]], similarity: float) -> dict[int, int]:
    """Each held id's group: the earliest held id of the same agent with a vector at least ``similarity`` close
    (its own id when none is), so a group's head is the first write of the run of near-duplicates."""
    group = {mid: mid for mid, _, _ in rows}
    heads: dict[str | None, list[tuple[int, np.ndarray]]] = {}
    for mid, agent, blob in rows:
        if blob is None or agent is None:
            continue
        vector = np.frombuffer(blob, dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            continue
        vector = vector / norm
        for head, other in heads.get(agent, []):
            if other.shape == vector.shape and float(other @ vector) >= similarity:
                group[mid] = head
                break
        else:
            heads.setdefault(agent, []).append((mid, vector))
    return group


def review_groups(held: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """The entries of :func:`list_quarantine` as review items: each group's entries, its head first."""
    items: dict[int, list[Mapping[str, Any]]] = {}
    for entry in held:
        items.setdefault(int(entry.get("group") or entry["id"]), []).append(entry)
    return list(items.values())


def held_writers(store: MemoryStore, tenant: str, ids: Sequence[int]) -> dict[int, str | None]:
    """For each of ``ids`` that is in quarantine, the agent that wrote it.

    Raises:
        InputError: when one of ``ids`` is not a quarantined memory of ``tenant``.
    """
    require_tenant(tenant)
    found: dict[int, str | None] = {}
    for mid in ids:
        row = store.conn.execute(
            "SELECT agent_id FROM quarantine WHERE tenant = ? AND memory_id = ?", (tenant, int(mid))
        ).fetchone()
        if row is None:
            raise InputError(f"Memory {mid} is not in quarantine in tenant {tenant!r}; list it with quarantine list.")
        found[int(mid)] = row[0]
    return found


def approve(
    store: MemoryStore,
    tenant: str,
    ids: Sequence[int],
    *,
    note: str | None = None,
    model: TrustModel | None = None,
) -> list[int]:
    """Make these quarantined memories visible, in one transaction; returns their ids.

    The approval is appended to each memory's provenance chain as an ``approve`` event by the user. With ``model``,
    each writer gets an ``approved`` signal in the same transaction.
    """
    writers = held_writers(store, tenant, ids)
    now = time.time()
    with write_transaction(store.conn) as conn:
        for mid in ids:
            row = conn.execute(
                "SELECT model, dim, vector FROM quarantine WHERE tenant = ? AND memory_id = ?", (tenant, int(mid))
            ).fetchone()
            if row["vector"] is not None:
                store._check_embedder(str(row["model"]), int(row["dim"]))
                conn.execute(
                    "INSERT INTO embeddings (memory_id, tenant, model, dim, vector) VALUES (?, ?, ?, ?, ?)",
                    (int(mid), tenant, row["model"], row["dim"], row["vector"]),
                )
            chain = json.loads(conn.execute("SELECT provenance FROM memories WHERE id = ?", (int(mid),)).fetchone()[0])
            event: dict[str, Any] = {"at": now, "action": "approve", "agent": None}
            if note:
                event["reason"] = note
            chain.append(event)
            conn.execute(
                "UPDATE memories SET quarantined = 0, provenance = ? WHERE tenant = ? AND id = ?",
                (json.dumps(chain, ensure_ascii=False), tenant, int(mid)),
            )
            conn.execute("DELETE FROM quarantine WHERE memory_id = ?", (int(mid),))
        # The vectors' ids are older than the newest one: derived indexes must reload, not just append.
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'vector_epoch'")
        conn.execute(
            "INSERT INTO audit_log (at, tenant, action, detail) VALUES (?, ?, ?, ?)",
            (now, tenant, "quarantine.approve", json.dumps({"ids": [int(i) for i in ids]})),
        )
        if model is not None:
            for mid, writer in writers.items():
                if writer is not None:
                    model.record(conn, tenant, writer, "approved", memory_id=mid, now=now)
    return [int(i) for i in ids]


def rejection_hook(model: TrustModel, tenant: str, writers: Mapping[int, str | None]) -> EraseHook:
    """The bookkeeping of rejecting held memories (``writers``: id -> writer, from :func:`held_writers`): a
    ``rejected`` signal to the writer of each one the erase removes, inside the erase's transaction."""

    def book(conn: sqlite3.Connection, erased: list[MemoryRecord], now: float) -> None:
        gone = {record.id for record in erased}
        for mid, writer in writers.items():
            if writer is not None and mid in gone:
                model.record(conn, tenant, writer, "rejected", memory_id=mid, now=now)

    return book
