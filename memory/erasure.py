"""The one erase path: rows, FTS index, embeddings, every vector backend, the behavioural file and conversations.

Erasing is complete or it is an error. After the rows go (one transaction), the derived copies are cleaned: vector
backends drop the ids, the behavioural file drops the events, conversation checkpoints that quote an erased memory
are deleted whole, and every SQLite file is scrubbed (FTS segments merged, freed pages zeroed by
``secure_delete``, WAL checkpointed and truncated) so that the text is gone from the files, not just unreachable.
The audit log records that an erase happened, with ids and counts, never the content.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hopmem.memory.db import connect, scrub_files, write_transaction
from hopmem.memory.records import EraseReport
from hopmem.memory.store import EraseHook, MemoryStore, require_tenant

if TYPE_CHECKING:
    from hopmem.memory.behaviour import BehaviourStore
    from hopmem.memory.vectors.base import VectorIndex

log = logging.getLogger(__name__)

# A conversation is deleted when one of its checkpoints holds this many leading characters of an erased memory
# (or the whole memory when it is shorter): long enough not to hit by chance, short enough to survive quoting.
QUOTE_CHARS = 200


class Eraser:
    """Erases memories everywhere they live.

    Args:
        store: the main store.
        indexes: every vector backend that holds this store's vectors (the active one and any other in use).
        behaviour: the behavioural file, if it exists.
        checkpoint_path: the conversation checkpoint file, if it exists.
    """

    def __init__(
        self,
        store: MemoryStore,
        indexes: Sequence[VectorIndex] = (),
        behaviour: BehaviourStore | None = None,
        checkpoint_path: Path | None = None,
        *,
        busy_timeout_ms: int = 10_000,
    ) -> None:
        self.store = store
        self.indexes = list(indexes)
        self.behaviour = behaviour
        self.checkpoint_path = checkpoint_path
        self.busy_timeout_ms = busy_timeout_ms

    def erase_ids(
        self, tenant: str, ids: Sequence[int], *, reason: str = "ids", hook: EraseHook | None = None
    ) -> EraseReport:
        """Erase these memories of ``tenant`` (ids of other tenants or unknown ids are ignored, not errors).

        Copies are removed before the rows, so that an erase interrupted half-way (a locked file) can simply be
        run again: until the rows go, the ids and texts to look for are still known. ``hook`` runs inside the rows'
        transaction (the trust signals an erase gives, :data:`hopmem.memory.store.EraseHook`): if it fails, the rows
        stay and the erase can be run again.
        """
        require_tenant(tenant)
        targets = self.store.contents_of(tenant, ids)
        threads = self._erase_conversations(tenant, list(targets.values()), whole_tenant=False)
        feedback = self.behaviour.erase_memories(tenant, list(targets)) if self.behaviour is not None else 0
        report, _ = self.store.erase_rows(tenant, list(targets), reason=reason, hook=hook)
        return self._finish(tenant, report, threads, feedback)

    def erase_tenant(self, tenant: str) -> EraseReport:
        """Erase everything ``tenant`` stored, its feedback and its conversations."""
        require_tenant(tenant)
        threads = self._erase_conversations(tenant, [], whole_tenant=True)
        feedback = self.behaviour.erase_tenant(tenant) if self.behaviour is not None else 0
        report, _ = self.store.erase_tenant_rows(tenant)
        return self._finish(tenant, report, threads, feedback)

    def _finish(self, tenant: str, report: EraseReport, threads: int, feedback: int) -> EraseReport:
        report.threads, report.feedback = threads, feedback
        for index in self.indexes:
            index.delete(tenant, report.ids)
        scrubbed = self.store.scrub()
        if self.behaviour is not None:
            scrubbed = self.behaviour.scrub() and scrubbed
        report.files_scrubbed = scrubbed
        if not scrubbed:
            log.warning("another process held the files open; the erased text leaves them at its next checkpoint")
        return report

    def _erase_conversations(self, tenant: str, contents: list[str], *, whole_tenant: bool) -> int:
        """Delete the checkpointed threads of ``tenant`` that quote an erased memory (or all of them)."""
        path = self.checkpoint_path
        if path is None or not path.exists() or (not contents and not whole_tenant):
            return 0
        conn = connect(path, busy_timeout_ms=self.busy_timeout_ms)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "checkpoints" not in tables:
                return 0
            prefix = tenant + ":"
            threads = {
                str(r[0])
                for r in conn.execute(
                    "SELECT DISTINCT thread_id FROM checkpoints WHERE substr(thread_id, 1, ?) = ?",
                    (len(prefix), prefix),
                )
            }
            if not whole_tenant:
                threads = {t for t in threads if _thread_quotes(conn, t, contents, tables)}
            with write_transaction(conn):
                for thread in sorted(threads):
                    for table in ("checkpoints", "writes"):
                        if table in tables:
                            conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread,))
            if threads:
                scrub_files(conn)
            return len(threads)
        finally:
            conn.close()


def _thread_quotes(conn: sqlite3.Connection, thread: str, contents: list[str], tables: set[str]) -> bool:
    quotes = {c[:QUOTE_CHARS].encode("utf-8") for c in contents if c}
    sources = [("checkpoints", "checkpoint"), ("checkpoints", "metadata"), ("writes", "value")]
    for table, column in sources:
        if table not in tables:
            continue
        for (blob,) in conn.execute(f"SELECT {column} FROM {table} WHERE thread_id = ?", (thread,)):
            data = blob.encode("utf-8") if isinstance(blob, str) else bytes(blob or b"")
            if any(q in data for q in quotes):
                return True
    return False
