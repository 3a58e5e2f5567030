"""The Qdrant calls of the qdrant vector index: the collection, uploads, deletes, reading points back, errors.

:class:`QdrantCollection` declares the state :class:`~hopmem.memory.vectors.qdrant.QdrantVectorIndex` sets up and
wraps each kind of request the index makes, with what local mode needs (one scroll page, deletes by id, WAL files).
"""

from __future__ import annotations

import logging
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.memory.errors import HopmemError, StoreError

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from qdrant_client import QdrantClient
    from qdrant_client.http import models as qm

    from hopmem.memory.store import MemoryStore

log = logging.getLogger(__name__)


class UploadProgress:
    """INFO log lines for uploads big enough to take a while (silent below ``every`` vectors)."""

    def __init__(self, what: str, total: int, every: int) -> None:
        self.what, self.total, self.every = what, total, every
        self.done = 0
        self._next = every
        self._start = time.perf_counter()
        if total >= every > 0:
            log.info("%s: uploading %d vectors", what, total)

    def advance(self, n: int) -> None:
        self.done += n
        if self.every > 0 and self.total >= self.every and self.done >= self._next:
            log.info("%s: %d/%d vectors uploaded", self.what, self.done, self.total)
            self._next = self.done + self.every

    def finish(self) -> None:
        if self.every > 0 and self.total >= self.every:
            log.info("%s: %d vectors in %.1f s", self.what, self.done, time.perf_counter() - self._start)


def checksum(row: NDArray[np.float32]) -> int:
    """CRC-32 of a vector's float32 bytes (the same bytes SQLite stores)."""
    return zlib.crc32(np.ascontiguousarray(row, dtype=np.float32).tobytes())


def one_line(exc: BaseException) -> str:
    """An exception's text squeezed onto one short line, for a one-sentence error message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class QdrantCollection:
    """The collection ``{collection}_{dim}`` of one store and the requests made to it (the base of the index).

    The attributes are set by :class:`~hopmem.memory.vectors.qdrant.QdrantVectorIndex`, whose docstring describes
    the arguments they come from.
    """

    store: MemoryStore
    location: str
    collection: str
    exact: bool
    batch_size: int
    scroll_size: int
    progress_every: int
    remote: bool
    local_folder: bool
    ids_in_filter: bool
    tenant_filter: bool
    _client: QdrantClient
    _api_errors: tuple[type[BaseException], ...]
    _dim: int | None
    _ready: bool
    _closed: bool

    def _upload(
        self, tenant: str, ids: NDArray[np.int64], vectors: NDArray[np.float32], progress: UploadProgress
    ) -> None:
        """Upsert points in batches of ``batch_size`` (creating the collection on first use)."""
        from qdrant_client.http import models

        self._ensure_collection()
        for start in range(0, len(ids), self.batch_size):
            part_ids = ids[start : start + self.batch_size]
            part = vectors[start : start + self.batch_size]
            self._client.upsert(
                self._name(),
                points=models.Batch(
                    ids=[int(i) for i in part_ids],
                    vectors=part.tolist(),
                    payloads=[{"tenant": tenant, "crc": checksum(row)} for row in part],
                ),
                wait=True,
            )
            progress.advance(len(part_ids))

    def _delete_points(self, ids: list[int]) -> None:
        """Delete points by id; callers pass ids they have seen under the right tenant.

        (Ids rather than a tenant filter: local mode evaluates a filter over every point of the collection.)
        """
        from qdrant_client.http import models

        for start in range(0, len(ids), self.scroll_size):
            part: list[qm.ExtendedPointId] = [*ids[start : start + self.scroll_size]]
            self._client.delete(self._name(), points_selector=models.PointIdsList(points=part), wait=True)

    def _held(self, tenant: str) -> Iterator[tuple[int, int | None]]:
        """(id, crc) of every point of ``tenant``."""
        for point in self._scroll(tenant, ["crc"]):
            crc = (point.payload or {}).get("crc")
            yield int(point.id), crc if isinstance(crc, int) else None

    def _scroll(self, tenant: str | None, keys: list[str]) -> Iterator[qm.Record]:
        """Every point of ``tenant`` (all points when None) with the payload ``keys``, without vectors."""
        from qdrant_client.http import models

        flt = None if tenant is None else models.Filter(must=[self._tenant_condition(tenant)])
        # A local page re-evaluates the filter over the whole collection: read it in one page.
        limit = self.scroll_size if self.remote else max(1, self._client.count(self._name(), exact=True).count)
        offset: Any = None
        while True:
            records, offset = self._client.scroll(
                self._name(), scroll_filter=flt, limit=limit, offset=offset, with_payload=keys, with_vectors=False
            )
            yield from records
            if offset is None:
                return

    def _ensure_collection(self) -> None:
        """Create ``{collection}_{dim}`` (cosine) when missing, with a tenant payload index on a server."""
        if self._collection_exists():
            return
        from qdrant_client.http import models

        dim = self._store_dim()
        assert dim is not None, "a collection is only created for vectors SQLite holds"
        self._client.create_collection(
            self._name(), vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
        )
        if self.remote:  # local mode ignores payload indexes (and warns)
            self._client.create_payload_index(
                self._name(),
                "tenant",
                field_schema=models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
                wait=True,
            )
        self._ready = True
        self._tune_local_storage()
        log.info("created qdrant collection %s (dim %d, cosine) at %s", self._name(), dim, self.location)

    def _tune_local_storage(self) -> None:
        """Put local-mode collection files in WAL mode with ``synchronous=NORMAL``.

        qdrant-client's local mode commits every point on its own; in SQLite's default rollback-journal mode each
        commit syncs the disk (about 300 points/s), in WAL mode they are several times faster. An OS crash may
        lose the last commits, which the next reconcile() restores from SQLite. This reaches into qdrant-client's
        internals, so it is skipped quietly where they differ.
        """
        if not self.local_folder:
            return
        collections = getattr(getattr(self._client, "_client", None), "collections", None)
        for collection in (collections or {}).values():
            conn = getattr(getattr(collection, "storage", None), "storage", None)
            if not isinstance(conn, sqlite3.Connection):
                continue
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                log.debug("qdrant local storage left in its default mode: %s", exc)

    def _collection_exists(self) -> bool:
        if not self._ready:
            self._ready = bool(self._client.collection_exists(self._name()))
        return self._ready

    @staticmethod
    def _tenant_condition(tenant: str) -> qm.FieldCondition:
        from qdrant_client.http import models

        return models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant))

    def _store_dim(self) -> int | None:
        """The store's vector size (None while it holds no vectors); fixed once known, as the store enforces."""
        if self._closed:
            raise StoreError(f"The Qdrant index at {self.location} is closed; open the store again.")
        if self._dim is None:
            info = self.store.embedder_info()
            self._dim = None if info is None else info[1]
        return self._dim

    def _name(self) -> str:
        return f"{self.collection}_{self._dim}"

    def _name_or_prefix(self) -> str:
        return self._name() if self._dim is not None else self.collection

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn a failed Qdrant call into one StoreError sentence."""
        try:
            yield
        except HopmemError:
            raise
        except self._api_errors as exc:
            raise StoreError(
                f"Qdrant at {self.location} failed while {doing} ({one_line(exc)}); check that it is running "
                "and reachable, then retry."
            ) from exc
