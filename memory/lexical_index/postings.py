"""Postings of the lexical index as numpy arrays, and how they are read from an FTS5 index.

FTS5 is read through its ``fts5vocab`` tables (types ``row`` and ``instance``): every token instance with its row and
column, decoded at once by numpy (:func:`read_instances`), grouped into (term, row) pairs with their term frequency per
column (:func:`group_pairs`), and held per term in CSR form (:class:`Postings`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


def varints(blob: bytes) -> list[int]:
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


@dataclass
class Instances:
    """Token instances read from an FTS5 index: the terms in index order, and per instance its row and column."""

    terms: list[str]
    counts: NDArray[np.int64]  # instances of each term
    rows: NDArray[np.int64]  # row id of each instance, grouped by term in ``terms`` order
    in_title: NDArray[np.int64]  # 1 when the instance is in the title column


def read_instances(conn: sqlite3.Connection, row_table: str, instance_table: str, max_rowid: int) -> Instances:
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
    return Instances(terms, counts, codes >> 1, codes & 1)


@dataclass
class Pairs:
    """Per (term, row) pair: the term's index, the row, and its token counts in the title and content columns."""

    term: NDArray[np.int64]
    row: NDArray[np.int64]
    title_tf: NDArray[np.int64]
    content_tf: NDArray[np.int64]


def group_pairs(term_of: NDArray[np.int64], inst: Instances) -> Pairs:
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
        return Pairs(empty, empty, empty, empty)
    sizes = np.diff(np.append(starts, len(row)))
    title_tf = np.add.reduceat(in_title, starts)
    return Pairs(term[starts], row[starts], title_tf, sizes - title_tf)


@dataclass
class Postings:
    """Postings in CSR form: the entries of term ``t`` are ``slots[ptr[t]:ptr[t + 1]]`` (terms past ``ptr`` have
    none), each with its weighted term frequency."""

    ptr: NDArray[np.int64]
    slots: NDArray[np.int32]
    freqs: NDArray[np.float64]

    @classmethod
    def empty(cls) -> Postings:
        return cls(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float64))

    @classmethod
    def build(
        cls, term: NDArray[np.int64], slots: NDArray[np.int64], freqs: NDArray[np.float64], n_terms: int
    ) -> Postings:
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
