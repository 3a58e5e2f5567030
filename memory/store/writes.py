"""Writing memories: add (with duplicate detection and quarantine), update (with its provenance), access counts.

Each write runs in one transaction together with the caller's bookkeeping hook (the trust signals), so the two
commit together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.memory.db import write_transaction
from hopmem.memory.errors import InputError
from hopmem.memory.records import AddResult, MemoryInput, MemoryRecord
from hopmem.memory.sql_filters import require_tenant
from hopmem.memory.store.reads import MemoryReads
from hopmem.memory.store.rows import RECORD_SELECT, content_hash, id_summary, record_from_row

if TYPE_CHECKING:
    from numpy.typing import NDArray

WriteHook = Callable[[sqlite3.Connection, list[AddResult], float], None]
"""Called inside the write transaction of :meth:`MemoryStore.add_memories` with its results and time: bookkeeping
that must commit with the write or not at all (the trust signals). An exception rolls the whole write back."""

UpdateHook = Callable[[sqlite3.Connection, MemoryRecord, float], None]
"""Called inside the transaction of :meth:`MemoryStore.update_memory` with the memory as it was before the change and
the time: bookkeeping that must commit with the change or not at all. An exception rolls the change back."""


class MemoryWrites(MemoryReads):
    """Adding and changing memories; it reads through :class:`MemoryReads` (an update returns the changed record)."""

    def add_memories(
        self,
        tenant: str,
        items: Sequence[MemoryInput],
        vectors: NDArray[np.float32] | None,
        *,
        embedder: tuple[str, int] | None,
        hold: Sequence[str | None] | None = None,
        hook: WriteHook | None = None,
    ) -> list[AddResult]:
        """Write memories (already validated) and their vectors in one transaction.

        A memory whose content is already stored for ``tenant`` (same content hash, any source class other than
        ``document``) is not written again: its result is ``duplicate`` with the stored id. Duplicates inside
        ``items`` collapse the same way.

        Args:
            hold: per item, None to store it visible, or the reason to store it quarantined (invisible, its vector
                kept in the quarantine table instead of ``embeddings``, so no vector index sees it).
            hook: bookkeeping run inside the same transaction (see :data:`WriteHook`).
        """
        if hold is not None and len(hold) != len(items):
            raise ValueError("hold and items differ in length")
        require_tenant(tenant)
        if (vectors is None) != (embedder is None):
            raise ValueError("vectors and embedder go together")
        if vectors is not None and embedder is not None and vectors.shape != (len(items), embedder[1]):
            raise ValueError(f"vectors have shape {vectors.shape}, expected ({len(items)}, {embedder[1]})")
        now = time.time()
        results: list[AddResult] = []
        with write_transaction(self.conn) as conn:
            if embedder is not None:
                self._check_embedder(*embedder)
            for position, item in enumerate(items):
                digest = content_hash(item.content)
                old = conn.execute(
                    "SELECT id, quarantined FROM memories WHERE tenant = ? AND content_hash = ?"
                    " AND source_class != 'document' LIMIT 1",
                    (tenant, digest),
                ).fetchone()
                if old is not None:
                    results.append(AddResult(int(old[0]), "duplicate", bool(old[1])))
                    continue
                reason = None if hold is None else hold[position]
                event: dict[str, Any] = {
                    "at": now,
                    "action": "add",
                    "agent": item.agent_id,
                    "source_class": item.source_class,
                }
                if item.on_behalf and item.agent_id is not None:
                    event["via"] = "user"  # the user's handle wrote it on the agent's behalf
                if item.source:
                    event["source"] = item.source
                if item.derived_from:
                    event["derived_from"] = list(item.derived_from)
                if item.parent_trust is not None:
                    event["parent_trust"] = round(float(item.parent_trust), 6)
                cur = conn.execute(
                    "INSERT INTO memories (tenant, title, content, tags, metadata, content_hash, source_class,"
                    " agent_id, importance, created_at, updated_at, provenance, quarantined)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        tenant,
                        item.title,
                        item.content,
                        json.dumps(list(item.tags), ensure_ascii=False),
                        json.dumps(item.metadata, ensure_ascii=False),
                        digest,
                        item.source_class,
                        item.agent_id,
                        item.importance,
                        now,
                        now,
                        json.dumps([event], ensure_ascii=False),
                        int(reason is not None),
                    ),
                )
                memory_id = int(cur.lastrowid or 0)
                if reason is not None:
                    vector = None if vectors is None else np.asarray(vectors[position], np.float32).tobytes()
                    conn.execute(
                        "INSERT INTO quarantine (memory_id, tenant, agent_id, reason, at, model, dim, vector)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            memory_id,
                            tenant,
                            item.agent_id,
                            reason,
                            now,
                            None if embedder is None else embedder[0],
                            None if embedder is None else embedder[1],
                            vector,
                        ),
                    )
                elif vectors is not None and embedder is not None:
                    conn.execute(
                        "INSERT INTO embeddings (memory_id, tenant, model, dim, vector) VALUES (?, ?, ?, ?, ?)",
                        (memory_id, tenant, *embedder, np.asarray(vectors[position], np.float32).tobytes()),
                    )
                if item.agent_id is not None:
                    conn.execute(
                        "INSERT INTO agents (tenant, id, created_at, last_seen, writes) VALUES (?, ?, ?, ?, 1)"
                        " ON CONFLICT (tenant, id) DO UPDATE SET last_seen = excluded.last_seen, writes = writes + 1",
                        (tenant, item.agent_id, now, now),
                    )
                results.append(AddResult(memory_id, "added", reason is not None))
            added = [r.id for r in results if r.status == "added"]
            if added:
                self._audit(conn, tenant, "memory.add", {"ids": id_summary(added), "count": len(added)}, now)
            held = [r.id for r in results if r.status == "added" and r.quarantined]
            if held:
                self._audit(conn, tenant, "memory.quarantine", {"ids": id_summary(held), "count": len(held)}, now)
            if hook is not None:
                hook(conn, results, now)
        return results

    def update_memory(
        self,
        tenant: str,
        memory_id: int,
        changes: dict[str, Any],
        vector: NDArray[np.float32] | None,
        *,
        embedder: tuple[str, int] | None,
        agent_id: str | None,
        reason: str | None = None,
        on_behalf: bool = False,
        hook: UpdateHook | None = None,
    ) -> MemoryRecord:
        """Change fields of one memory and append the change to its provenance chain, in one transaction.

        ``changes`` holds validated values for any of: content, title, tags, metadata, importance. A change of the
        embedded text (content or title) comes with its new ``vector`` when the store keeps vectors; the vector of a
        quarantined memory stays in the quarantine table, out of every vector index.

        Args:
            agent_id: who made the change (None: the user).
            on_behalf: the user's handle made the change, labelled with ``agent_id`` (provenance ``"via": "user"``).
            hook: bookkeeping run inside the same transaction (see :data:`UpdateHook`).

        Raises:
            InputError: when ``memory_id`` is not a memory of ``tenant``.
        """
        require_tenant(tenant)
        allowed = {"content", "title", "tags", "metadata", "importance"}
        if not changes or not set(changes) <= allowed:
            raise InputError(f"Nothing to update; change any of: {', '.join(sorted(allowed))}.")
        now = time.time()
        with write_transaction(self.conn) as conn:
            row = conn.execute(
                RECORD_SELECT + " WHERE m.tenant = ? AND m.id = ?",
                (tenant, memory_id),
            ).fetchone()
            if row is None:
                raise InputError(f"There is no memory {memory_id} in tenant {tenant!r}; check the id.")
            event: dict[str, Any] = {"at": now, "action": "update", "agent": agent_id, "fields": sorted(changes)}
            if on_behalf and agent_id is not None:
                event["via"] = "user"
            if reason:
                event["reason"] = reason
            columns: dict[str, Any] = {}
            for key, value in changes.items():
                if key in ("tags", "metadata"):
                    columns[key] = json.dumps(list(value) if key == "tags" else value, ensure_ascii=False)
                else:
                    columns[key] = value
            if "content" in changes:
                columns["content_hash"] = content_hash(changes["content"])
                event["previous_hash"] = row["content_hash"]
            chain = json.loads(row["provenance"])
            chain.append(event)
            columns["provenance"] = json.dumps(chain, ensure_ascii=False)
            columns["updated_at"] = now
            assignments = ", ".join(f"{name} = ?" for name in columns)
            conn.execute(
                f"UPDATE memories SET {assignments} WHERE tenant = ? AND id = ?",
                (*columns.values(), tenant, memory_id),
            )
            if vector is not None and embedder is not None:
                self._check_embedder(*embedder)
                blob = np.asarray(vector, np.float32).tobytes()
                if row["quarantined"]:
                    conn.execute(
                        "UPDATE quarantine SET model = ?, dim = ?, vector = ? WHERE tenant = ? AND memory_id = ?",
                        (embedder[0], embedder[1], blob, tenant, memory_id),
                    )
                else:
                    conn.execute(
                        "INSERT INTO embeddings (memory_id, tenant, model, dim, vector) VALUES (?, ?, ?, ?, ?)"
                        " ON CONFLICT (memory_id) DO UPDATE SET vector = excluded.vector, model = excluded.model,"
                        " dim = excluded.dim",
                        (memory_id, tenant, embedder[0], embedder[1], blob),
                    )
            self._audit(conn, tenant, "memory.update", {"id": memory_id, "fields": sorted(changes)}, now)
            if hook is not None:
                hook(conn, record_from_row(row), now)
        return self.get(tenant, [memory_id], include_quarantined=True)[0]

    def touch(self, tenant: str, ids: Sequence[int]) -> None:
        """Count an access of each memory (``access_count``, ``last_accessed``), in one short transaction."""
        require_tenant(tenant)
        if not ids:
            return
        now = time.time()
        with write_transaction(self.conn) as conn:
            conn.executemany(
                "UPDATE memories SET access_count = access_count + 1, last_accessed = ? WHERE tenant = ? AND id = ?",
                [(now, tenant, int(i)) for i in ids],
            )
