"""FTS5's own tokenizer, for the lexical index: new rows and query words are tokenized exactly as the store's FTS5
table tokenizes them, by FTS5 tables with the store's ``tokenize`` option in a private in-memory database."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

from hopmem.memory.lexical_index.postings import Instances, read_instances

MAX_CACHED_WORDS = 50_000
"""At most this many query words keep their FTS5 token cached; past it the cache is emptied and starts again."""


def tokenize_option(conn: sqlite3.Connection, table: str) -> str:
    """The ``tokenize=...`` option of ``table``'s CREATE statement, as written there (empty for FTS5's default)."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    if row is None:
        raise LookupError(f"no FTS5 table {table}")
    found = re.search(r"tokenize\s*=\s*('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")", str(row[0]), re.IGNORECASE)
    return f", tokenize={found.group(1)}" if found else ""


class FtsTokenizer:
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

    def rows(self, rows: Sequence[tuple[int, str, str]]) -> Instances:
        """The token instances of ``(rowid, title, content)`` rows."""
        self.conn.execute("BEGIN")
        try:
            self.conn.executemany("INSERT INTO scratch_rows (rowid, title, content) VALUES (?, ?, ?)", rows)
            return read_instances(self.conn, "scratch_rows_row", "scratch_rows_instance", max(r[0] for r in rows))
        finally:
            self.conn.execute("DELETE FROM scratch_rows")
            self.conn.execute("COMMIT")

    def term_of(self, words: Sequence[str]) -> list[str | None]:
        """Per word, the one FTS5 token it makes as a quoted query string, or None when it makes none or several."""
        missing = [w for w in dict.fromkeys(words) if w not in self._words]
        if missing:
            if len(self._words) + len(missing) > MAX_CACHED_WORDS:
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

    def cached_words(self) -> set[str]:
        """The query words whose FTS5 tokens are cached."""
        return set(self._words)

    def forget_words(self) -> None:
        """Drop the cached query words (an erased text must leave no word behind)."""
        self._words.clear()

    def close(self) -> None:
        self._words.clear()
        self.conn.close()
