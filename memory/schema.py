"""Numbered schema migrations of the main store. A migration is applied once, inside one transaction."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: documents, memories (a chunk of a document is a memory of source class 'document'), FTS5, embeddings.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (key, value) VALUES ('vector_epoch', '0');

    CREATE TABLE documents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        source TEXT NOT NULL,
        external_id TEXT,
        title TEXT NOT NULL DEFAULT '',
        content_hash TEXT NOT NULL,
        n_chunks INTEGER NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (tenant, source)
    );

    CREATE TABLE memories (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        document_id INTEGER REFERENCES documents(id) ON DELETE CASCADE,
        chunk_index INTEGER,
        title TEXT NOT NULL DEFAULT '',
        content TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        metadata TEXT NOT NULL DEFAULT '{}',
        content_hash TEXT NOT NULL,
        source_class TEXT NOT NULL DEFAULT 'document',
        agent_id TEXT,
        importance REAL NOT NULL DEFAULT 0.5,
        access_count INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        last_accessed REAL
    );
    CREATE INDEX memories_tenant ON memories (tenant, id);
    CREATE INDEX memories_hash ON memories (tenant, content_hash);
    CREATE INDEX memories_document ON memories (document_id);

    CREATE VIRTUAL TABLE memories_fts USING fts5(
        title, content, content='memories', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, title, content) VALUES (new.id, new.title, new.content);
    END;
    CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, title, content)
        VALUES ('delete', old.id, old.title, old.content);
    END;
    CREATE TRIGGER memories_fts_update AFTER UPDATE OF title, content ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, title, content)
        VALUES ('delete', old.id, old.title, old.content);
        INSERT INTO memories_fts (rowid, title, content) VALUES (new.id, new.title, new.content);
    END;

    CREATE TABLE embeddings (
        memory_id INTEGER PRIMARY KEY REFERENCES memories(id) ON DELETE CASCADE,
        tenant TEXT NOT NULL,
        model TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL
    );
    CREATE INDEX embeddings_tenant ON embeddings (tenant, memory_id);
    -- Any removal invalidates derived vector indexes; appends are picked up by id.
    CREATE TRIGGER embeddings_epoch AFTER DELETE ON embeddings BEGIN
        UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'vector_epoch';
    END;

    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        tenant TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # 2: provenance chains, agents, filter indexes; in-place vector updates also invalidate derived indexes.
    """
    ALTER TABLE memories ADD COLUMN provenance TEXT NOT NULL DEFAULT '[]';
    CREATE INDEX memories_agent ON memories (tenant, agent_id);
    CREATE INDEX memories_class ON memories (tenant, source_class);
    CREATE INDEX memories_created ON memories (tenant, created_at);

    CREATE TABLE agents (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen REAL NOT NULL,
        writes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, id)
    );

    CREATE TRIGGER embeddings_epoch_update AFTER UPDATE OF vector ON embeddings BEGIN
        UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'vector_epoch';
    END;
    """,
    # 3: trust (memory/trust/model.py): per-agent Beta state, the signal history, and the quarantine of held writes.
    # A quarantined memory keeps its row (so it can be reviewed and erased) but is invisible to every read: the
    # shared filter SQL requires quarantined = 0, and its vector waits in quarantine.vector, outside the embeddings
    # table that every vector index is derived from, until it is approved.
    """
    ALTER TABLE memories ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;

    CREATE TABLE trust_agents (
        tenant TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        alpha REAL NOT NULL,
        beta REAL NOT NULL,
        updated_at REAL NOT NULL,
        signals INTEGER NOT NULL DEFAULT 0,
        burst_start REAL NOT NULL DEFAULT 0,
        burst_count INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, agent_id)
    );

    CREATE TABLE trust_signals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        weight REAL NOT NULL,
        alpha REAL NOT NULL,
        beta REAL NOT NULL,
        memory_id INTEGER,
        by_agent TEXT,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX trust_signals_agent ON trust_signals (tenant, agent_id, id);

    CREATE TABLE quarantine (
        memory_id INTEGER PRIMARY KEY REFERENCES memories(id) ON DELETE CASCADE,
        tenant TEXT NOT NULL,
        agent_id TEXT,
        reason TEXT NOT NULL,
        trust REAL,
        at REAL NOT NULL,
        model TEXT,
        dim INTEGER,
        vector BLOB
    );
    CREATE INDEX quarantine_tenant ON quarantine (tenant, memory_id);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; return the version it was at before.

    Raises:
        RuntimeError: when the file was written by a newer hopmem (its version is above ours).
    """
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise RuntimeError(f"schema version {current} is newer than this hopmem's {SCHEMA_VERSION}")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        script = MIGRATIONS[version - 1]
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated between our first read and the write lock (two server workers
            # opening a new file at once): the version is read again under the lock.
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= version:
                conn.execute("COMMIT")
                continue
            for statement in _split(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current


def _split(script: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies whole (executescript would commit implicitly)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
