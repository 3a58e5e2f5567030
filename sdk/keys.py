"""API keys (``hopmem keys``): each is bound to one tenant and one agent identity (or the tenant's user).

The network faces share them: ``hopmem serve`` (and its /mcp) checks them on every request, ``hopmem ui`` logs in
with them off loopback.

A key reads ``hm_<id>_<secret>``: ``id`` (8 hex digits) names the row, ``secret`` is 32 random bytes. The store keeps
only the SHA-256 of the whole key, so a leaked key file gives no usable key; the secret is shown once, when the key
is created. Keys live in a small SQLite file next to the store (``DATA_DIR/keys.sqlite``), which every server worker
reads on each request, so a key revoked from the CLI stops working at once in every worker.

A key made without an agent is the tenant's *user* key: the server opens the memory as the user's own handle, which
may approve or reject quarantined writes and label writes with an agent id; a key bound to an agent acts only as that
agent (the memory engine enforces both rules).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hopmem.memory.errors import InputError, StoreError

if TYPE_CHECKING:
    from hopmem.settings import Settings

KEY_PATTERN = re.compile(r"^hm_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    agent TEXT,
    hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
)
"""


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: never the secret."""

    id: str
    tenant: str
    agent: str | None
    created_at: float
    revoked_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """Create, list, revoke and check API keys in one SQLite file (safe with many processes: WAL, short writes).

    Args:
        path: the key file (``settings.data_dir / "keys.sqlite"``); created on first write.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"Cannot open the key file {self.path}: {exc}; check the path and its permissions."
            ) from exc
        return conn

    def create(self, tenant: str, agent: str | None = None) -> tuple[KeyInfo, str]:
        """A new key for ``tenant`` acting as ``agent`` (None: the tenant's user); returns it and its secret.

        The names are taken as given: ``hopmem keys create`` checks them first by opening the memory as that
        identity (the engine's rules for tenant and agent ids).
        """
        if not tenant or not isinstance(tenant, str):
            raise InputError("A key needs a tenant; pass --tenant.")
        key_id = secrets.token_hex(4)
        key = f"hm_{key_id}_{secrets.token_urlsafe(32)}"
        info = KeyInfo(key_id, tenant, agent, time.time(), None)
        conn = self._connect()
        try:
            conn.execute(
                "INSERT INTO api_keys (id, tenant, agent, hash, created_at) VALUES (?, ?, ?, ?, ?)",
                (key_id, tenant, agent, _digest(key), info.created_at),
            )
        finally:
            conn.close()
        return info, key

    def list(self) -> list[KeyInfo]:
        """Every key, oldest first, revoked ones included."""
        if not self.path.exists():
            return []
        conn = self._connect()
        try:
            rows = conn.execute(
                "SELECT id, tenant, agent, created_at, revoked_at FROM api_keys ORDER BY created_at"
            ).fetchall()
        finally:
            conn.close()
        return [KeyInfo(*row) for row in rows]

    def revoke(self, key_id: str) -> KeyInfo:
        """Revoke a key by its id; it stops working at the next request.

        Raises:
            InputError: when there is no such key.
        """
        conn = self._connect()
        try:
            done = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id)
            ).rowcount
            row = conn.execute(
                "SELECT id, tenant, agent, created_at, revoked_at FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        finally:
            conn.close()
        if row is None:
            raise InputError(f"There is no key {key_id!r}; see hopmem keys list.")
        if not done:
            raise InputError(f"The key {key_id!r} was revoked already.")
        return KeyInfo(*row)

    def active_count(self) -> int:
        """How many keys are not revoked (0 when the file does not exist)."""
        if not self.path.exists():
            return 0
        conn = self._connect()
        try:
            return int(conn.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0])
        finally:
            conn.close()

    def verify(self, key: str) -> KeyInfo | None:
        """The key's record when ``key`` is a valid, unrevoked key, else None (constant-time hash comparison)."""
        match = KEY_PATTERN.match(key)
        if match is None or not self.path.exists():
            return None
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT id, tenant, agent, created_at, revoked_at, hash FROM api_keys WHERE id = ?", (match.group(1),)
            ).fetchone()
        finally:
            conn.close()
        if row is None or not hmac.compare_digest(row[5], _digest(key)) or row[4] is not None:
            return None
        return KeyInfo(*row[:5])


def key_path(settings: Settings) -> Path:
    """Where the API keys live: ``DATA_DIR/keys.sqlite``."""
    return Path(settings.data_dir) / "keys.sqlite"
