"""The lexical index's arrays, and how they follow the store's FTS5 index (freshness, incremental catch-up, erasure).

:class:`FtsMirror` holds per row its id, tenant and column lengths, and the postings of every term; it reads them
from FTS5 and keeps them in step with it as the contract of :mod:`hopmem.memory.lexical_index` states (the
"Freshness" and "Erasure" points). :class:`~hopmem.memory.lexical_index.LexicalIndex` adds the search on top.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from hopmem.memory.db import connect
from hopmem.memory.lexical_index.postings import Pairs, Postings, group_pairs, read_instances, varints
from hopmem.memory.lexical_index.tokenizer import FtsTokenizer, tokenize_option

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = logging.getLogger(__name__)

FTS_TABLE = "memories_fts"
_AVERAGES_ROWID = 1  # FTS5 %_data record: varints nRow, then the token total of each column
_STRUCTURE_ROWID = 10  # FTS5 %_data record: the segment structure, rewritten by every write to the index
_TEXT_FIELDS = frozenset({"title", "content"})
SQL_IDS = 500  # ids per ``IN (...)`` list


class StoreFile(Protocol):
    """What the index needs of the store (:class:`hopmem.memory.store.MemoryStore` has it): the file, the store's
    own connection (to see whether it is inside a transaction) and its memory-mapping setting."""

    @property
    def path(self) -> Path: ...

    @property
    def conn(self) -> sqlite3.Connection: ...

    @property
    def mmap_mb(self) -> int: ...


class FtsMirror:
    """Rows and postings read from the store's FTS5 index, kept in step with it; the base of the lexical index.

    Args:
        store: the store whose ``memories_fts`` index this mirrors.
        title_weight: bm25 weight of the title column (the store's).
        content_weight: bm25 weight of the content column (the store's).
        busy_timeout_ms: how long the index's own connection waits for a lock.
    """

    def __init__(
        self,
        store: StoreFile,
        *,
        title_weight: float,
        content_weight: float,
        busy_timeout_ms: int = 10_000,
    ) -> None:
        self.store = store
        # Its own read-only connection: the first build runs in a background thread, and no read transaction of
        # this index can get in the way of the store's writes (or the other way round).
        in_memory = str(store.path) == ":memory:"
        self.conn = (
            store.conn
            if in_memory
            else connect(store.path, busy_timeout_ms=busy_timeout_ms, readonly=True, mmap_mb=store.mmap_mb)
        )
        self._own_conn = not in_memory
        self.weights = (float(title_weight), float(content_weight))
        self._lock = threading.RLock()
        self._builder: threading.Thread | None = None
        self._closing = False
        self._tokenizer = FtsTokenizer(tokenize_option(self.conn, FTS_TABLE))
        self.conn.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.hopmem_lexical_row USING fts5vocab(main, {FTS_TABLE}, 'row')"
        )
        self.conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.hopmem_lexical_instance"
            f" USING fts5vocab(main, {FTS_TABLE}, 'instance')"
        )
        self.builds = 0  # full builds from FTS5 (a test and the logs read it)
        self.failed: str | None = None  # why the index was turned off, if it was
        self._clear()

    # ---- state --------------------------------------------------------------------------------------------------

    def _clear(self) -> None:
        self._marker: tuple[bytes | None, int] | None = None
        self._audit_id = 0
        self._max_id = 0
        self._terms: list[str] = []
        self._term_ids: dict[str, int] = {}
        self._tenant_codes: dict[str, int] = {}
        self._ids = np.zeros(0, np.int64)
        self._tenant = np.zeros(0, np.int32)
        self._title_len = np.zeros(0, np.int64)
        self._content_len = np.zeros(0, np.int64)
        self._length = np.zeros(0, np.float64)
        self._total_tokens = 0
        self._base = Postings.empty()
        self._base_part: NDArray[np.float64] | None = None  # see _score
        self._base_part_avgdl = 0.0
        self._last_avgdl = 0.0
        self._delta = Postings.empty()
        self._delta_triples: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ready(self) -> bool:
        """Whether the index has been built (searches before that are answered by FTS5)."""
        return self._marker is not None

    # ---- freshness ----------------------------------------------------------------------------------------------

    def _read_marker(self) -> tuple[bytes | None, int]:
        row = self.conn.execute(
            f"SELECT (SELECT block FROM {FTS_TABLE}_data WHERE id = ?), (SELECT coalesce(max(id), 0) FROM audit_log)",
            (_STRUCTURE_ROWID,),
        ).fetchone()
        return (None if row[0] is None else bytes(row[0])), int(row[1])

    def _fts_totals(self) -> tuple[int, list[int]]:
        """FTS5's own (row count, token total per column), from its averages record."""
        row = self.conn.execute(f"SELECT block FROM {FTS_TABLE}_data WHERE id = ?", (_AVERAGES_ROWID,)).fetchone()
        values = varints(bytes(row[0])) if row is not None and row[0] is not None else []
        return (values[0] if values else 0), [*values[1:], 0, 0][:2]

    def _consistent(self) -> bool:
        rows, totals = self._fts_totals()
        return rows == len(self._ids) and totals == [int(self._title_len.sum()), int(self._content_len.sum())]

    def refresh(self) -> bool:
        """Bring the index in step with the store; returns False when it cannot be used now (the caller asks FTS5).

        It cannot while the store's connection is inside a transaction: what that transaction wrote is not
        committed, and a derived index must not keep it.
        """
        with self._lock:
            if self.failed is not None or self._closing or self.store.conn.in_transaction:
                return False
            try:
                current = self._read_marker()
            except sqlite3.OperationalError:
                if self._closing:  # close() interrupted this read: nothing to bring in step any more
                    return False
                raise
            if current == self._marker:
                return True
            self.conn.execute("BEGIN")
            try:
                marker = self._read_marker()
                if self._marker is None:
                    self._build()
                else:
                    self._catch_up()
                    if not self._consistent():
                        log.info("lexical index out of step with FTS5 after catching up; rebuilding it")
                        self._build()
                if not self._consistent():
                    raise RuntimeError("the lexical index does not match FTS5's row count and token totals")
                self._marker = marker
            except Exception as exc:
                # FTS5 is the source of truth and answers instead; the index stays off so as not to retry per query.
                self._clear()
                self.failed = f"{type(exc).__name__}: {exc}"
                if not self._closing:
                    log.warning("lexical index disabled, FTS5 answers lexical search (%s)", self.failed)
                return False
            except BaseException:
                self._clear()
                raise
            finally:
                self.conn.execute("COMMIT")
            return True

    def _build(self) -> None:
        """Read the whole index from FTS5 (inside the caller's read transaction)."""
        started = time.perf_counter()
        self._clear()
        self._tokenizer.forget_words()
        self._audit_id = int(self.conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0])
        rows = self.conn.execute("SELECT id, tenant FROM memories ORDER BY id").fetchall()
        ids = np.fromiter((int(r[0]) for r in rows), dtype=np.int64, count=len(rows))
        self._ids = ids
        self._tenant = np.fromiter((self._tenant_code(str(r[1])) for r in rows), dtype=np.int32, count=len(rows))
        self._max_id = int(ids[-1]) if len(ids) else 0
        inst = read_instances(self.conn, "temp.hopmem_lexical_row", "temp.hopmem_lexical_instance", self._max_id)
        self._terms = inst.terms
        self._term_ids = {t: i for i, t in enumerate(inst.terms)}
        pairs = group_pairs(np.arange(len(inst.terms), dtype=np.int64), inst)
        slots = np.searchsorted(ids, pairs.row)
        if len(slots) and (slots.max() >= len(ids) or np.any(ids[slots] != pairs.row)):
            raise RuntimeError("the FTS5 index holds rows that the memories table does not")
        self._set_lengths(np.searchsorted(ids, inst.rows), inst.in_title, len(ids), replace=True)
        self._set_base(Postings.build(pairs.term, slots, self._freqs(pairs), len(self._terms)))
        self.builds += 1
        log.info(
            "lexical index built from FTS5: %d rows, %d terms, %d postings in %.2f s",
            len(ids),
            len(self._terms),
            len(self._base),
            time.perf_counter() - started,
        )

    def _catch_up(self) -> None:
        """Apply what changed since the last refresh (inside the caller's read transaction)."""
        changed: set[int] = set()
        entries = self.conn.execute(
            "SELECT id, action, detail FROM audit_log WHERE id > ? ORDER BY id", (self._audit_id,)
        ).fetchall()
        for entry_id, action, detail in entries:
            self._audit_id = int(entry_id)
            if action == "memory.update":
                data = json.loads(detail)
                if _TEXT_FIELDS & set(data.get("fields", ())):
                    changed.add(int(data["id"]))
        new_rows = int(self.conn.execute("SELECT count(*) FROM memories WHERE id > ?", (self._max_id,)).fetchone()[0])
        drop = {i for i in changed if i <= self._max_id}
        fts_rows, _ = self._fts_totals()
        if fts_rows != len(self._ids) + new_rows:  # something was removed: find what by comparing the ids
            current = np.fromiter(
                (int(r[0]) for r in self.conn.execute("SELECT id FROM memories WHERE id <= ?", (self._max_id,))),
                dtype=np.int64,
            )
            drop.update(int(i) for i in self._ids[~np.isin(self._ids, current)])
        if drop:
            self._remove(drop)
        self._append(sorted(i for i in changed if i <= self._max_id))

    def _append(self, reread: Sequence[int]) -> None:
        """Add the rows above the last id seen, and the rows in ``reread`` (their text changed)."""
        rows: list[tuple[int, str, str, str]] = [
            (int(r[0]), str(r[1]), r[2], r[3])
            for r in self.conn.execute(
                "SELECT id, tenant, title, content FROM memories WHERE id > ? ORDER BY id", (self._max_id,)
            )
        ]
        for start in range(0, len(reread), SQL_IDS):
            part = list(reread[start : start + SQL_IDS])
            marks = ",".join("?" * len(part))
            rows.extend(
                (int(r[0]), str(r[1]), r[2], r[3])
                for r in self.conn.execute(
                    f"SELECT id, tenant, title, content FROM memories WHERE id IN ({marks})", part
                )
            )
        if not rows:
            return
        inst = self._tokenizer.rows([(r[0], r[2], r[3]) for r in rows])
        term_of = np.fromiter((self._term_id(t) for t in inst.terms), dtype=np.int64, count=len(inst.terms))
        pairs = group_pairs(term_of, inst)
        new_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        order = np.argsort(new_ids, kind="stable")
        first = len(self._ids)
        slot_of_row = first + order[np.searchsorted(new_ids[order], pairs.row)]
        slot_of_instance = first + order[np.searchsorted(new_ids[order], inst.rows)]
        self._ids = np.concatenate([self._ids, new_ids])
        tenants = np.fromiter((self._tenant_code(r[1]) for r in rows), dtype=np.int32, count=len(rows))
        self._tenant = np.concatenate([self._tenant, tenants])
        self._set_lengths(slot_of_instance, inst.in_title, len(rows), replace=False)
        self._max_id = max(self._max_id, int(new_ids.max()))
        self._delta_triples.append((pairs.term, slot_of_row, self._freqs(pairs)))
        delta_size = sum(len(t[0]) for t in self._delta_triples)
        if delta_size > max(50_000, len(self._base) // 8):
            self._merge(keep=None)
        else:
            term, slots, freqs = (np.concatenate(parts) for parts in zip(*self._delta_triples, strict=True))
            self._delta = Postings.build(term, slots, freqs, len(self._terms))

    def _remove(self, ids: Iterable[int]) -> None:
        """Drop these rows and every term no other row holds (erased text must leave no trace here)."""
        keep = ~np.isin(self._ids, np.fromiter(ids, dtype=np.int64))
        self._ids, self._tenant = self._ids[keep], self._tenant[keep]
        self._title_len, self._content_len = self._title_len[keep], self._content_len[keep]
        self._length = self._length[keep]
        self._total_tokens = int(self._title_len.sum() + self._content_len.sum())
        self._merge(keep=keep)
        self._tokenizer.forget_words()

    def _merge(self, keep: NDArray[np.bool_] | None) -> None:
        """Fold the appended postings into the base ones; with ``keep``, drop the other slots and unused terms."""
        parts = [self._base.triples(), *self._delta_triples]
        term, slots, freqs = (np.concatenate(p) for p in zip(*parts, strict=True))
        if keep is not None:
            stay = keep[slots]
            new_slot = np.cumsum(keep) - 1
            term, slots, freqs = term[stay], new_slot[slots[stay]], freqs[stay]
            used = np.bincount(term, minlength=len(self._terms)) > 0
            if not used.all():
                new_term = np.cumsum(used) - 1
                term = new_term[term]
                self._terms = [t for t, u in zip(self._terms, used.tolist(), strict=True) if u]
                self._term_ids = {t: i for i, t in enumerate(self._terms)}
        self._set_base(Postings.build(term, slots, freqs, len(self._terms)))
        self._delta = Postings.empty()
        self._delta_triples = []

    def _set_base(self, postings: Postings) -> None:
        self._base = postings
        self._base_part = None

    def _set_lengths(
        self, slot_of_instance: NDArray[np.int64], in_title: NDArray[np.int64], count: int, *, replace: bool
    ) -> None:
        first = 0 if replace else len(self._title_len)
        local = slot_of_instance - first
        title = np.bincount(local, weights=in_title, minlength=count).astype(np.int64)
        total = np.bincount(local, minlength=count).astype(np.int64)
        if replace:
            self._title_len, self._content_len = title, total - title
        else:
            self._title_len = np.concatenate([self._title_len, title])
            self._content_len = np.concatenate([self._content_len, total - title])
        self._length = (self._title_len + self._content_len).astype(np.float64)
        self._total_tokens = int(self._title_len.sum() + self._content_len.sum())

    def _freqs(self, pairs: Pairs) -> NDArray[np.float64]:
        title_w, content_w = self.weights
        return pairs.title_tf * title_w + pairs.content_tf * content_w

    def _term_id(self, term: str) -> int:
        found = self._term_ids.get(term)
        if found is None:
            found = self._term_ids[term] = len(self._terms)
            self._terms.append(term)
        return found

    def _tenant_code(self, tenant: str) -> int:
        found = self._tenant_codes.get(tenant)
        if found is None:
            found = self._tenant_codes[tenant] = len(self._tenant_codes)
        return found
