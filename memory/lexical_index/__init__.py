"""An in-process bm25 index derived from the FTS5 index: FTS5's own scores, without its per-row cost.

Why: FTS5 answers an OR query by walking the position lists of every matching row and calling ``bm25()`` once per
row; a typical 9-word question matches about a tenth of a store, which costs ~30 ms at 100k memories. This index
holds, per term, the rows that contain it and their weighted term frequency as numpy arrays, so one query is a few
vectorised operations over its terms' postings.

Contract:

* **Tokens are FTS5's.** The postings are read from the store's FTS5 index through an ``fts5vocab`` table of type
  ``instance``; new rows and query words are tokenized by an FTS5 table with the store's own ``tokenize`` option in
  a private in-memory database. Nothing here re-implements a tokenizer.
* **Scores are FTS5's bm25.** k1 = 1.2, b = 0.75, IDF = log((N - n + 0.5) / (n + 0.5)) floored at 1e-6, the
  store's column weights, N and the average row length taken over the whole FTS table (every tenant, as FTS5 does),
  evaluated in float64 in FTS5's order of operations. Rankings therefore equal ``ORDER BY bm25(...), id``, ties
  aside; with integer column weights (the defaults 2 and 1) the scores are the same numbers.
* **Query semantics are** :mod:`hopmem.memory.fts`'s: the distinct word tokens of the text, each one quoted FTS5
  string, ORed. A word that FTS5 splits into several tokens (``foo_bar``) would be a phrase; phrases are not
  handled here: :meth:`LexicalIndex.search` returns None and the caller asks FTS5.
* **Tenant and filters** are applied by SQL to the ranked candidates, with the store's own filter SQL (so the
  visibility rule and every filter mean exactly what they mean for FTS5's path); other tenants' rows are skipped
  in-process before that.
* **Freshness.** Before each search the index compares FTS5's structure record (rewritten by every write to the
  FTS index) and the audit log's last id with what it saw: equal means nothing changed (one indexed lookup).
  Otherwise it catches up incrementally: rows with a higher id are appended, rows whose text an audited update
  changed are re-read, and rows that disappeared (erase, document replaced) are found by comparing FTS5's row
  count and then the id lists. Afterwards its row count and per-column token totals must equal FTS5's averages
  record; any difference rebuilds the index from FTS5. Writes of other processes and connections are therefore
  picked up like those of this one.
* **Erasure.** Removing rows compacts the postings and drops every term no remaining row holds, and clears the
  cache of tokenized query words, so an erased text leaves no term, id or word behind in this process.

FTS5 stays the source of truth and the fallback (``lexical_backend = "fts5"``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.memory.db import connect
from hopmem.memory.fts import query_tokens
from hopmem.memory.records import Hit, SearchFilter
from hopmem.memory.store import _filter_sql, require_tenant

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hopmem.memory.store import MemoryStore

log = logging.getLogger(__name__)

# FTS5's bm25() constants (sqlite/ext/fts5/fts5_aux.c); they are fixed there, so they are fixed here.
K1 = 1.2
B = 0.75
IDF_FLOOR = 1e-6

FTS_TABLE = "memories_fts"
_AVERAGES_ROWID = 1  # FTS5 %_data record: varints nRow, then the token total of each column
_STRUCTURE_ROWID = 10  # FTS5 %_data record: the segment structure, rewritten by every write to the index
_TEXT_FIELDS = frozenset({"title", "content"})
_SQL_IDS = 500  # ids per ``IN (...)`` list
_MAX_CACHED_WORDS = 50_000


def _varints(blob: bytes) -> list[int]:
    """Decode SQLite/FTS5 varints (big-endian, 7 bits a byte, the ninth byte whole)."""
    out: list[int] = []
    pos = 0
    while pos < len(blob):
        value = 0
        for i in range(9):
            byte = blob[pos]
            pos += 1
            if i == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        out.append(value)
    return out


def _tokenize_option(conn: sqlite3.Connection, table: str) -> str:
    """The ``tokenize=...`` option of ``table``'s CREATE statement, as written there (empty for FTS5's default)."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    if row is None:
        raise LookupError(f"no FTS5 table {table}")
    found = re.search(r"tokenize\s*=\s*('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")", str(row[0]), re.IGNORECASE)
    return f", tokenize={found.group(1)}" if found else ""


@dataclass
class _Instances:
    """Token instances read from an FTS5 index: the terms in index order, and per instance its row and column."""

    terms: list[str]
    counts: NDArray[np.int64]  # instances of each term
    rows: NDArray[np.int64]  # row id of each instance, grouped by term in ``terms`` order
    in_title: NDArray[np.int64]  # 1 when the instance is in the title column


def _read_instances(conn: sqlite3.Connection, row_table: str, instance_table: str, max_rowid: int) -> _Instances:
    """Every token instance of an FTS5 index, through its ``fts5vocab`` tables (``row`` and ``instance`` types).

    The instances come as one fixed-width decimal string made by SQLite (``rowid * 2 + in_title`` each), which numpy
    decodes at once: fetching millions of Python tuples would cost seconds at 100k rows.
    """
    vocab = conn.execute(f"SELECT term, cnt FROM {row_table} ORDER BY term").fetchall()
    terms = [str(r[0]) for r in vocab]
    counts = np.fromiter((int(r[1]) for r in vocab), dtype=np.int64, count=len(vocab))
    width = len(str(2 * max(max_rowid, 1) + 1))
    text = conn.execute(
        f"SELECT group_concat(printf('%0{width}d', doc * 2 + (col = 'title')), '') FROM {instance_table}"
    ).fetchone()[0]
    data = np.frombuffer((text or "").encode("ascii"), dtype=np.uint8)
    if len(data) != int(counts.sum()) * width:
        raise RuntimeError("the FTS5 vocabulary changed while it was read")
    digits = data.reshape(-1, width)
    codes = np.zeros(len(digits), np.int64)
    for column in range(width):  # column by column: no (instances x width) int64 temporary at 100k rows
        codes *= 10
        codes += digits[:, column] - 48
    return _Instances(terms, counts, codes >> 1, codes & 1)


@dataclass
class _Pairs:
    """Per (term, row) pair: the term's index, the row, and its token counts in the title and content columns."""

    term: NDArray[np.int64]
    row: NDArray[np.int64]
    title_tf: NDArray[np.int64]
    content_tf: NDArray[np.int64]


def _pairs(term_of: NDArray[np.int64], inst: _Instances) -> _Pairs:
    """Group instances into (term, row) pairs; ``term_of`` maps each of ``inst.terms`` to a global term index."""
    term = np.repeat(term_of, inst.counts)
    row, in_title = inst.rows, inst.in_title
    same_term = term[1:] == term[:-1]
    if np.any(same_term & (row[1:] < row[:-1])) or np.any(term[1:] < term[:-1]):
        order = np.lexsort((row, term))  # fts5vocab yields terms in order and rows in order within one; be sure
        term, row, in_title = term[order], row[order], in_title[order]
        same_term = term[1:] == term[:-1]
    starts = np.flatnonzero(np.concatenate([[True], ~same_term | (row[1:] != row[:-1])])) if len(row) else row
    if not len(starts):
        empty = np.zeros(0, np.int64)
        return _Pairs(empty, empty, empty, empty)
    sizes = np.diff(np.append(starts, len(row)))
    title_tf = np.add.reduceat(in_title, starts)
    return _Pairs(term[starts], row[starts], title_tf, sizes - title_tf)


@dataclass
class _Postings:
    """Postings in CSR form: the entries of term ``t`` are ``slots[ptr[t]:ptr[t + 1]]`` (terms past ``ptr`` have
    none), each with its weighted term frequency."""

    ptr: NDArray[np.int64]
    slots: NDArray[np.int32]
    freqs: NDArray[np.float64]

    @classmethod
    def empty(cls) -> _Postings:
        return cls(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float64))

    @classmethod
    def build(
        cls, term: NDArray[np.int64], slots: NDArray[np.int64], freqs: NDArray[np.float64], n_terms: int
    ) -> _Postings:
        order = np.argsort(term, kind="stable")
        ptr = np.zeros(n_terms + 1, np.int64)
        np.cumsum(np.bincount(term, minlength=n_terms), out=ptr[1:])
        return cls(ptr, slots[order].astype(np.int32), freqs[order])

    def __len__(self) -> int:
        return len(self.slots)

    def of(self, t: int) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
        if t + 1 >= len(self.ptr):
            return self.slots[:0], self.freqs[:0]
        lo, hi = int(self.ptr[t]), int(self.ptr[t + 1])
        return self.slots[lo:hi], self.freqs[lo:hi]

    def triples(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        term = np.repeat(np.arange(len(self.ptr) - 1, dtype=np.int64), np.diff(self.ptr))
        return term, self.slots.astype(np.int64), self.freqs


class _Tokenizer:
    """FTS5's tokenizer with the store's options, run on FTS5 tables in a private in-memory database.

    ``scratch_rows`` (title, content) tokenizes rows as the store's FTS5 table did; ``scratch_words`` tokenizes
    single query words.
    Both are emptied after each use, with ``secure_delete`` so that freed pages keep no text.
    """

    def __init__(self, tokenize: str) -> None:
        self.conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA secure_delete = ON")
        self.conn.execute(f"CREATE VIRTUAL TABLE scratch_rows USING fts5(title, content{tokenize})")
        self.conn.execute("CREATE VIRTUAL TABLE scratch_rows_row USING fts5vocab(scratch_rows, 'row')")
        self.conn.execute("CREATE VIRTUAL TABLE scratch_rows_instance USING fts5vocab(scratch_rows, 'instance')")
        self.conn.execute(f"CREATE VIRTUAL TABLE scratch_words USING fts5(word{tokenize})")
        self.conn.execute("CREATE VIRTUAL TABLE scratch_words_instance USING fts5vocab(scratch_words, 'instance')")
        self._words: dict[str, str | None] = {}

    def rows(self, rows: Sequence[tuple[int, str, str]]) -> _Instances:
        """The token instances of ``(rowid, title, content)`` rows."""
        self.conn.execute("BEGIN")
        try:
            self.conn.executemany("INSERT INTO scratch_rows (rowid, title, content) VALUES (?, ?, ?)", rows)
            return _read_instances(self.conn, "scratch_rows_row", "scratch_rows_instance", max(r[0] for r in rows))
        finally:
            self.conn.execute("DELETE FROM scratch_rows")
            self.conn.execute("COMMIT")

    def term_of(self, words: Sequence[str]) -> list[str | None]:
        """Per word, the one FTS5 token it makes as a quoted query string, or None when it makes none or several."""
        missing = [w for w in dict.fromkeys(words) if w not in self._words]
        if missing:
            if len(self._words) + len(missing) > _MAX_CACHED_WORDS:
                self._words.clear()
            found: dict[int, list[str]] = {}
            self.conn.execute("BEGIN")
            try:
                self.conn.executemany(
                    "INSERT INTO scratch_words (rowid, word) VALUES (?, ?)", [(i + 1, w) for i, w in enumerate(missing)]
                )
                for doc, term in self.conn.execute("SELECT doc, term FROM scratch_words_instance ORDER BY doc, offset"):
                    found.setdefault(int(doc), []).append(str(term))
            finally:
                self.conn.execute("DELETE FROM scratch_words")
                self.conn.execute("COMMIT")
            for i, word in enumerate(missing):
                terms = found.get(i + 1, [])
                self._words[word] = terms[0] if len(terms) == 1 else None
        return [self._words[w] for w in words]

    def forget_words(self) -> None:
        self._words.clear()

    def close(self) -> None:
        self._words.clear()
        self.conn.close()


class LexicalIndex:
    """bm25 over the store's FTS5 tokens, held in numpy arrays; see the module docstring for the contract.

    Args:
        store: the store whose ``memories_fts`` index this mirrors.
        title_weight: bm25 weight of the title column (the store's).
        content_weight: bm25 weight of the content column (the store's).
        pool_factor: the first SQL check of tenant and filters takes ``k * pool_factor`` ranked candidates.
    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        title_weight: float,
        content_weight: float,
        pool_factor: int = 4,
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
        self.pool_factor = max(1, int(pool_factor))
        self._lock = threading.RLock()
        self._builder: threading.Thread | None = None
        self._closing = False
        self._tokenizer = _Tokenizer(_tokenize_option(self.conn, FTS_TABLE))
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
        self._base = _Postings.empty()
        self._base_part: NDArray[np.float64] | None = None  # see _score
        self._base_part_avgdl = 0.0
        self._last_avgdl = 0.0
        self._delta = _Postings.empty()
        self._delta_triples: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []

    def __len__(self) -> int:
        return len(self._ids)

    def terms(self) -> set[str]:
        """Every term the index holds (after bringing it up to date)."""
        with self._lock:
            self.refresh()
            return set(self._terms)

    def ids(self, tenant: str) -> set[int]:
        """The memory ids of ``tenant`` the index holds (after bringing it up to date)."""
        require_tenant(tenant)
        with self._lock:
            self.refresh()
            code = self._tenant_codes.get(tenant)
            return set() if code is None else {int(i) for i in self._ids[self._tenant == code]}

    def cached_words(self) -> set[str]:
        """The query words whose FTS5 tokens are cached."""
        return set(self._tokenizer._words)

    def close(self) -> None:
        """Stop a build in progress (SQLite interrupts its query), forget everything, close the connections."""
        self._closing = True
        builder = self._builder
        if builder is not None and builder.is_alive():
            self.conn.interrupt()
            builder.join()
        with self._lock:
            self._clear()
            self._tokenizer.close()
            if self._own_conn:
                self.conn.close()

    def refresh_if_used(self) -> None:
        """Catch up now if the index holds (or is building) anything: after an erase, so that the erased text leaves
        this process at once. An index never used holds nothing and stays unbuilt."""
        if self.ready or self._builder is not None:
            self.refresh()

    @property
    def ready(self) -> bool:
        """Whether the index has been built (searches before that are answered by FTS5)."""
        return self._marker is not None

    def build_in_background(self) -> None:
        """Start the first build in a daemon thread, once; :meth:`search` returns None (FTS5 answers) until then.

        A build reads every token instance of the FTS index (about 0.3 s at 10k memories, seconds at 100k), which a
        one-shot command should not wait for.
        """
        with self._lock:
            idle = self._builder is None or not self._builder.is_alive()
            if idle and not self.ready and self.failed is None and not self._closing:
                self._builder = threading.Thread(target=self.refresh, name="hopmem-lexical-build", daemon=True)
                self._builder.start()

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
        values = _varints(bytes(row[0])) if row is not None and row[0] is not None else []
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
            if self._read_marker() == self._marker:
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
        inst = _read_instances(self.conn, "temp.hopmem_lexical_row", "temp.hopmem_lexical_instance", self._max_id)
        self._terms = inst.terms
        self._term_ids = {t: i for i, t in enumerate(inst.terms)}
        pairs = _pairs(np.arange(len(inst.terms), dtype=np.int64), inst)
        slots = np.searchsorted(ids, pairs.row)
        if len(slots) and (slots.max() >= len(ids) or np.any(ids[slots] != pairs.row)):
            raise RuntimeError("the FTS5 index holds rows that the memories table does not")
        self._set_lengths(np.searchsorted(ids, inst.rows), inst.in_title, len(ids), replace=True)
        self._set_base(_Postings.build(pairs.term, slots, self._freqs(pairs), len(self._terms)))
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
        for start in range(0, len(reread), _SQL_IDS):
            part = list(reread[start : start + _SQL_IDS])
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
        pairs = _pairs(term_of, inst)
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
            self._delta = _Postings.build(term, slots, freqs, len(self._terms))

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
        self._set_base(_Postings.build(term, slots, freqs, len(self._terms)))
        self._delta = _Postings.empty()
        self._delta_triples = []

    def _set_base(self, postings: _Postings) -> None:
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

    def _freqs(self, pairs: _Pairs) -> NDArray[np.float64]:
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

    # ---- search -------------------------------------------------------------------------------------------------

    def search(self, tenant: str, query: str, k: int, *, filters: SearchFilter | None = None) -> list[Hit] | None:
        """The top ``k`` memories of ``tenant`` by FTS5's bm25 for ``query``, or None when FTS5 must answer.

        None means: the index is still being built (the first call starts that, see :meth:`build_in_background`),
        the query holds a word FTS5 reads as a phrase, or the store's connection is inside a transaction (see
        :meth:`refresh`). Scores are negated bm25, higher is better, as the store returns them.
        """
        require_tenant(tenant)
        words = query_tokens(query)
        if not words or k <= 0:
            return []
        if not self.ready:
            self.build_in_background()
            return None
        with self._lock:
            if not self.refresh():
                return None
            phrases = self._tokenizer.term_of(words)
            if any(p is None for p in phrases):
                return None
            code = self._tenant_codes.get(tenant)
            if code is None or not len(self._ids):
                return []
            scores, candidates = self._score([p for p in phrases if p is not None])
            candidates = candidates[self._tenant[candidates] == code]
            return self._top(tenant, candidates, scores, int(k), filters)

    def _score(self, phrases: Sequence[str]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """FTS5's bm25 of every row (0 where no phrase matches), and the rows that match any phrase.

        Each phrase adds ``idf * part`` to the rows holding it, where ``part`` is the length-normalised term
        frequency of fts5Bm25Function, the same expression in the same order of operations; the additions happen
        in phrase order (``bincount`` adds its weights in array order), as FTS5 sums them. ``part`` depends only on
        the postings and the average row length, so once the index is unchanged for two searches in a row it is
        computed for all base postings at once and then only sliced.
        """
        n = len(self._ids)
        rows = float(n)
        avgdl = float(self._total_tokens) / rows
        if self._base_part is None or self._base_part_avgdl != avgdl:
            self._base_part = None
            if avgdl == self._last_avgdl:
                self._base_part = self._part(self._base.slots, self._base.freqs, avgdl)
                self._base_part_avgdl = avgdl
        self._last_avgdl = avgdl
        slot_parts: list[NDArray[np.integer[Any]]] = []
        score_parts: list[NDArray[np.float64]] = []
        for phrase in phrases:
            t = self._term_ids.get(phrase)
            if t is None:
                continue  # no row holds it: FTS5 adds 0 to every row's score
            base_slots, base_freqs = self._base.of(t)
            delta_slots, delta_freqs = self._delta.of(t)
            hits = len(base_slots) + len(delta_slots)
            if not hits:
                continue
            idf = math.log((rows - hits + 0.5) / (hits + 0.5))
            if idf <= 0.0:
                idf = IDF_FLOOR
            if len(base_slots):
                if self._base_part is not None:
                    lo = int(self._base.ptr[t])
                    part = self._base_part[lo : lo + len(base_slots)]
                else:
                    part = self._part(base_slots, base_freqs, avgdl)
                slot_parts.append(base_slots)
                score_parts.append(idf * part)
            if len(delta_slots):
                slot_parts.append(delta_slots)
                score_parts.append(idf * self._part(delta_slots, delta_freqs, avgdl))
        if not slot_parts:
            return np.zeros(n, np.float64), np.zeros(0, np.int64)
        slots = np.concatenate(slot_parts)
        scores = np.asarray(np.bincount(slots, weights=np.concatenate(score_parts), minlength=n), np.float64)
        if min(self.weights) > 0:  # every match then scores above 0 (idf >= 1e-6, frequency > 0)
            # ``scores > 0`` first: numpy finds the true entries of a bool array several times faster than the
            # non-zero entries of a float one (0.12 vs 0.41 ms at 100k rows).
            return scores, np.flatnonzero(scores > 0.0).astype(np.int64)
        return scores, np.flatnonzero(np.bincount(slots, minlength=n) > 0).astype(np.int64)

    def _part(self, slots: NDArray[np.integer[Any]], freqs: NDArray[np.float64], avgdl: float) -> NDArray[np.float64]:
        """fts5Bm25Function's ``(f * (k1 + 1)) / (f + k1 * (1 - b + b * D / avgdl))`` for these postings."""
        length = self._length[slots]
        return (freqs * (K1 + 1.0)) / (freqs + K1 * (1 - B + B * length / avgdl))

    def _top(
        self,
        tenant: str,
        candidates: NDArray[np.int64],
        scores: NDArray[np.float64],
        k: int,
        filters: SearchFilter | None,
    ) -> list[Hit]:
        """The best ``k`` candidates (score descending, then id) that pass the tenant and filters in SQL."""
        if not len(candidates):
            return []
        cand_scores = scores[candidates]
        cand_ids = self._ids[candidates]
        pool = min(len(candidates), k * self.pool_factor)
        if pool < len(candidates):
            kth = cand_scores[np.argpartition(-cand_scores, pool - 1)[pool - 1]]
            first = np.flatnonzero(cand_scores >= kth)  # ties with the pool's last row compete, broken by id
        else:
            first = np.arange(len(candidates))
        ranked = first[np.lexsort((cand_ids[first], -cand_scores[first]))]
        where, params = _filter_sql(filters)
        out: list[Hit] = []
        done = 0
        while len(out) < k:
            if done >= len(ranked):
                if len(ranked) == len(candidates):
                    break
                ranked = np.lexsort((cand_ids, -cand_scores))  # rare: the filters rejected most of the pool
            batch = ranked[done : done + (max(pool, _SQL_IDS) if done else k)]
            done += len(batch)
            batch_ids: list[int] = cand_ids[batch].tolist()
            passing = self._passing(tenant, batch_ids, where, params)
            out.extend(Hit(i, s) for i, s in zip(batch_ids, cand_scores[batch].tolist(), strict=True) if i in passing)
        return out[:k]

    def _passing(self, tenant: str, ids: Sequence[int], where: str, params: Sequence[object]) -> set[int]:
        """Which of ``ids`` are memories of ``tenant`` that pass the filter SQL (checked in SQLite, not here)."""
        passing: set[int] = set()
        for start in range(0, len(ids), _SQL_IDS):
            part = ids[start : start + _SQL_IDS]
            marks = ",".join("?" * len(part))
            passing.update(
                int(r[0])
                for r in self.conn.execute(
                    f"SELECT m.id FROM memories m WHERE m.tenant = ? AND m.id IN ({marks}){where}",
                    (tenant, *part, *params),
                )
            )
        return passing
