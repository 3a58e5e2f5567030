"""The behavioural file: feedback and clicks on memories, kept apart from the main store.

It is a second SQLite file so that a user can erase what they did (``hopmem memory erase --behaviour``) without
touching what they stored, and so that a copy of the main store carries no behavioural trace.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hopmem.memory.db import connect, scrub_files, write_transaction
from hopmem.memory.errors import InputError
from hopmem.memory.ltr import SCHEMA as LTR_SCHEMA
from hopmem.memory.store import require_tenant

FEEDBACK_KINDS: dict[str, float] = {"up": 1.0, "down": -1.0, "click": 0.5}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    memory_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value REAL NOT NULL,
    query TEXT,
    agent_id TEXT,
    at REAL NOT NULL
)
"""


class BehaviourStore:
    """Feedback events per tenant and memory.

    Args:
        path: the SQLite file (created when missing).
        busy_timeout_ms: how long a writer waits for another process's lock.
    """

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.conn = connect(self.path, busy_timeout_ms=busy_timeout_ms)
        with write_transaction(self.conn) as conn:
            conn.execute(_SCHEMA)
            conn.execute("CREATE INDEX IF NOT EXISTS feedback_memory ON feedback (tenant, memory_id)")
            conn.execute(LTR_SCHEMA)  # the learned ranking layer is behavioural data: it goes with the feedback

    def record(
        self, tenant: str, memory_id: int, kind: str, *, query: str | None = None, agent_id: str | None = None
    ) -> int:
        """Store one event; returns its id."""
        with self.recording(tenant, memory_id, kind, query=query, agent_id=agent_id) as event:
            return event

    @contextmanager
    def recording(
        self, tenant: str, memory_id: int, kind: str, *, query: str | None = None, agent_id: str | None = None
    ) -> Iterator[int]:
        """Store one event that commits only when the block under it succeeds; yields its id.

        Feedback is also a trust signal, written to the main store: the engine gives the signal inside this block,
        so a signal that fails (a locked file, a full disk) leaves no event behind, and an event never exists without
        the signal it gave. The two files cannot share one transaction: a crash between the two commits, or this
        event's commit failing after the signal's succeeded, leaves a signal without its event.
        """
        require_tenant(tenant)
        if kind not in FEEDBACK_KINDS:
            raise InputError(f"Unknown feedback {kind!r}; use one of {', '.join(FEEDBACK_KINDS)}.")
        if query is not None and (not isinstance(query, str) or len(query) > 10_000):
            raise InputError("The feedback query must be a string of at most 10,000 characters.")
        with write_transaction(self.conn) as conn:
            cur = conn.execute(
                "INSERT INTO feedback (tenant, memory_id, kind, value, query, agent_id, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tenant, int(memory_id), kind, FEEDBACK_KINDS[kind], query, agent_id, time.time()),
            )
            yield int(cur.lastrowid or 0)

    def summary(self, tenant: str, memory_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Per memory: counts of each kind and the summed value."""
        require_tenant(tenant)
        out: dict[int, dict[str, Any]] = {}
        ids = sorted({int(i) for i in memory_ids})
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for mid, kind, n, total in self.conn.execute(
                "SELECT memory_id, kind, count(*), sum(value) FROM feedback"
                f" WHERE tenant = ? AND memory_id IN ({marks}) GROUP BY memory_id, kind",
                (tenant, *part),
            ):
                entry = out.setdefault(int(mid), {"value": 0.0})
                entry[str(kind)] = int(n)
                entry["value"] += float(total)
        return out

    def count(self, tenant: str) -> int:
        require_tenant(tenant)
        return int(self.conn.execute("SELECT count(*) FROM feedback WHERE tenant = ?", (tenant,)).fetchone()[0])

    def erase_memories(self, tenant: str, memory_ids: Sequence[int]) -> int:
        """Delete the events about these memories; returns how many went."""
        require_tenant(tenant)
        ids = sorted({int(i) for i in memory_ids})
        removed = 0
        with write_transaction(self.conn) as conn:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                removed += conn.execute(
                    f"DELETE FROM feedback WHERE tenant = ? AND memory_id IN ({marks})", (tenant, *part)
                ).rowcount
        return removed

    def erase_tenant(self, tenant: str) -> int:
        """Delete every event of ``tenant``, and the ranking layer learned from them."""
        require_tenant(tenant)
        with write_transaction(self.conn) as conn:
            conn.execute("DELETE FROM ltr_models WHERE tenant = ?", (tenant,))
            return int(conn.execute("DELETE FROM feedback WHERE tenant = ?", (tenant,)).rowcount)

    def scrub(self) -> bool:
        return scrub_files(self.conn)

    def close(self) -> None:
        self.conn.close()
