"""SQLite connections set up the one way hopmem needs: WAL, a busy timeout, foreign keys, short write transactions."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hopmem.memory.errors import StoreError


def connect(
    path: Path | str, *, busy_timeout_ms: int = 10_000, readonly: bool = False, mmap_mb: int = 0
) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit, see :func:`write_transaction`).

    ``mmap_mb`` > 0 lets SQLite read up to that many MiB of the file through a memory map: a search touches a few
    dozen rows spread over the file, and mapped pages skip a system call and a copy each (reads only; SQLite
    still writes with ``write``, so what reaches the file is the same).

    Raises:
        StoreError: when the file cannot be opened or is not a SQLite database.
    """
    target = str(path)
    conn: sqlite3.Connection | None = None
    try:
        if target != ":memory:" and not readonly:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        uri = f"file:{target}?mode=ro" if readonly else target
        conn = sqlite3.connect(
            uri, uri=readonly, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")  # freed pages are zeroed, so erased text leaves the file
        if mmap_mb > 0 and target != ":memory:":
            conn.execute(f"PRAGMA mmap_size = {int(mmap_mb) * 1024 * 1024}")
        if not readonly:
            _retry_while_locked(conn, "PRAGMA journal_mode = WAL", busy_timeout_ms)
            conn.execute("PRAGMA synchronous = NORMAL")
        _retry_while_locked(conn, "SELECT count(*) FROM sqlite_master", busy_timeout_ms)
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()  # else the file stays open as long as the error (and its traceback) lives
        raise StoreError(_explain(target, exc)) from exc
    except OSError as exc:
        raise StoreError(
            f"Cannot open the store {target}: {exc.strerror}; check the path and its permissions."
        ) from exc
    return conn


def _retry_while_locked(conn: sqlite3.Connection, statement: str, busy_timeout_ms: int) -> None:
    """Run ``statement`` again while SQLite reports the file locked, up to the busy timeout.

    Turning a new file to WAL needs an exclusive lock, and two connections that both hold a shared lock while asking
    for it would deadlock, so SQLite answers one of them "locked" at once instead of calling the busy handler: the
    busy timeout alone does not cover processes that create one store together (server workers starting at once).
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    pause = 0.005
    while True:
        try:
            conn.execute(statement).fetchone()
            return
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if ("locked" not in text and "busy" not in text) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _explain(target: str, exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return (
            f"The store {target} is not a valid SQLite database (corrupt?); restore it from a backup or move it away."
        )
    if "locked" in text or "busy" in text:
        return f"The store {target} is locked by another process; retry when it has finished."
    if "readonly" in text or "unable to open" in text:
        return f"Cannot open the store {target} for writing ({text}); check the file's permissions."
    return f"The store {target} failed: {text}."


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block in one ``BEGIN IMMEDIATE`` transaction: all of it is written, or none.

    Raises:
        StoreError: when SQLite refuses the write (locked past the timeout, read-only, disk full, corrupt).
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.DatabaseError as exc:
        raise StoreError(_explain(_filename(conn), exc)) from exc
    try:
        yield conn
    except sqlite3.DatabaseError as exc:  # read-only file, disk full, corrupt page, lock lost mid-way
        conn.execute("ROLLBACK")
        raise StoreError(_explain(_filename(conn), exc)) from exc
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        conn.execute("ROLLBACK")
        raise StoreError(_explain(_filename(conn), exc)) from exc


def _filename(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row and row[2] else ":memory:"


def scrub_files(conn: sqlite3.Connection) -> bool:
    """Copy the WAL into the database and truncate it, so that deleted content leaves both files.

    Returns False when another connection's open read kept part of the WAL alive (the caller reports it).
    """
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy
