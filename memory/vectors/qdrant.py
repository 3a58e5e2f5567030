"""A vector index kept in Qdrant (``qdrant-client``): local folder, in memory, or a Qdrant server.

Like every backend it is *derived* from SQLite's ``embeddings`` table. One collection per store and vector size
(``{collection}_{dim}``, cosine distance) holds one point per memory vector: the point id is the memory id and the
payload is ``{"tenant": ..., "crc": ...}``, where ``crc`` is the CRC-32 of the vector's bytes as SQLite stores them,
so that a vector changed in place (``update_memory``) is noticed even though its id stays the same.

Keeping in step with SQLite, cheaply in the common case:

* Before each search the tenant's ``vector_state`` (epoch, max id, count) is compared with what this index last
  loaded. Only appends (same epoch, max id grew, counts add up) upload just the new rows.
* Anything else (the epoch moved because a vector was deleted or replaced, or the counts disagree) reconciles the
  tenant: its point ids and checksums are read back from Qdrant and compared with SQLite; extra points are deleted,
  missing or changed ones uploaded.
* ``reconcile()`` does that for every tenant of SQLite and of Qdrant; opening the index calls it.

Every search filters by tenant inside Qdrant, with two shortcuts for local mode, whose filters run in Python over
every point (see ``ids_in_filter`` and ``tenant_filter``): an ``ids`` search fetches those points and scores them
here, and a collection holding one tenant's points only is searched without the filter, each hit's tenant checked.

A local folder can be opened by one process at a time (qdrant-client locks it); several processes need a Qdrant
server. The collection must belong to one store only: reconciling deletes every point SQLite does not know.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.memory.errors import ConfigError, HopmemError, InputError, StoreError
from hopmem.memory.records import Hit
from hopmem.memory.store import MemoryStore, require_tenant

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from qdrant_client import QdrantClient
    from qdrant_client.http import models as qm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Seen:
    """What this index last loaded of one tenant, in the terms of ``MemoryStore.vector_state``."""

    epoch: int
    max_id: int
    count: int


class _Progress:
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


def _checksum(row: NDArray[np.float32]) -> int:
    """CRC-32 of a vector's float32 bytes (the same bytes SQLite stores)."""
    return zlib.crc32(np.ascontiguousarray(row, dtype=np.float32).tobytes())


def _one_line(exc: BaseException) -> str:
    """An exception's text squeezed onto one short line, for a one-sentence error message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class QdrantVectorIndex:
    """Nearest-neighbour search in a Qdrant collection, kept in step with the store's SQLite embeddings.

    Args:
        store: the source of truth; its ``embedder_info()`` gives the vector size.
        location: a folder (local mode, one process at a time), ``":memory:"``, or an ``http(s)://`` server URL.
        collection: the collection name prefix; the collection used is ``{collection}_{dim}``.
        api_key: the server's API key, if it wants one (ignored in local mode).
        exact: ask a server for exact (brute-force) search instead of HNSW; local mode is always exact.
        batch_size: points per upsert request, and rows read from SQLite at a time while reconciling.
        scroll_size: points per page when reading ids back from a server (local mode reads one page, since each
            local page re-evaluates the filter over the whole collection).
        ids_in_filter: how a search restricted to ``ids`` runs: True puts a ``HasIdCondition`` in the Qdrant filter
            (right for a server); False fetches those points' vectors and scores them here (right for local mode,
            whose filter tests each id condition at a cost of points x ids). None picks by ``location``.
        tenant_filter: True filters every search by tenant inside Qdrant. False (local mode's default, via None)
            skips the filter while the collection holds this tenant's points only, since local mode evaluates a
            filter in Python over every point; each returned point's tenant is still checked, and a search falls
            back to the filter when one is not the tenant's. None: True on a server, False in local mode.
        progress_every: uploads of at least this many vectors log progress at INFO every that many vectors.

    Raises:
        ConfigError: when qdrant-client is not installed.
        StoreError: when the local folder is in use by another process, or the server cannot be reached.
    """

    name = "qdrant"

    def __init__(
        self,
        store: MemoryStore,
        location: str,
        *,
        collection: str = "hopmem",
        api_key: str | None = None,
        exact: bool = False,
        batch_size: int = 512,
        scroll_size: int = 10_000,
        ids_in_filter: bool | None = None,
        tenant_filter: bool | None = None,
        progress_every: int = 10_000,
    ) -> None:
        try:
            from qdrant_client import QdrantClient
            from qdrant_client.http.exceptions import ApiException
        except ImportError as exc:
            raise ConfigError(
                "The qdrant vector backend needs qdrant-client; install hopmem[qdrant] or use the exact backend."
            ) from exc
        if not location:
            raise ConfigError("The qdrant backend needs a location: a folder, ':memory:' or an http(s):// URL.")
        if batch_size < 1 or scroll_size < 1:
            raise ConfigError("The qdrant batch_size and scroll_size must be positive; fix the setting.")
        self.store = store
        self.location = location
        self.collection = collection
        self.exact = exact
        self.batch_size = batch_size
        self.scroll_size = scroll_size
        self.progress_every = progress_every
        self._api_errors: tuple[type[BaseException], ...] = (ApiException,)
        self._seen: dict[str, _Seen] = {}
        self._dim: int | None = None
        self._ready = False  # the collection is known to exist
        self._closed = False
        self.remote = location.startswith(("http://", "https://"))
        self.local_folder = not self.remote and location != ":memory:"
        self.ids_in_filter = self.remote if ids_in_filter is None else ids_in_filter
        self.tenant_filter = self.remote if tenant_filter is None else tenant_filter
        try:
            if self.remote:
                self._client: QdrantClient = QdrantClient(url=location, api_key=api_key)
            elif location == ":memory:":
                self._client = QdrantClient(location=":memory:")
            else:
                self._client = QdrantClient(path=location)
                self._tune_local_storage()
        except (RuntimeError, ValueError, OSError) as exc:  # folder locked, legacy or unreadable files, bad path
            if "already accessed" in str(exc):
                raise StoreError(
                    f"The Qdrant folder {location} is already open in another process (or client); close it there, "
                    "or run a Qdrant server and use its http:// URL as the location for multi-process use."
                ) from exc
            raise StoreError(
                f"Cannot open the Qdrant index at {location} ({_one_line(exc)}); check the location."
            ) from exc
        try:
            changed = self.reconcile()
        except BaseException:
            self.close()
            raise
        if changed:
            log.info("qdrant index %s reconciled with SQLite: %d vectors changed", self._name_or_prefix(), changed)

    # ---- the VectorIndex protocol -----------------------------------------------------------------------------

    def search(
        self, tenant: str, vector: NDArray[np.float32], k: int, *, ids: Sequence[int] | None = None
    ) -> list[Hit]:
        """The ``k`` nearest memories of ``tenant`` by cosine similarity, best first, ties by ascending id.

        The query filters by tenant (and by ``ids``) inside Qdrant, except where the class's ``ids_in_filter`` and
        ``tenant_filter`` arguments choose the local-mode shortcuts.
        """
        require_tenant(tenant)
        if k <= 0 or (ids is not None and not len(ids)):
            return []
        dim = self._store_dim()
        if dim is None:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != dim:
            raise InputError(
                f"The query vector has {query.shape[0]} dimensions but the store's vectors have {dim}; "
                "embed the query with the store's embedder."
            )
        with self._errors("searching"):
            seen = self._sync(tenant)
            if seen.count == 0 or not self._collection_exists():
                return []
            from qdrant_client.http import models

            must: list[Any] = [self._tenant_condition(tenant)]
            if ids is not None:
                wanted: list[qm.ExtendedPointId] = sorted({int(i) for i in ids})
                if not self.ids_in_filter:
                    return self._search_fetched(tenant, query, k, wanted)
                must.append(models.HasIdCondition(has_id=wanted))
            elif not self._tenant_filter_needed(seen):
                hits = self._query(query, k, None, check_tenant=tenant)
                if hits is not None:
                    return hits
            hits = self._query(query, k, models.Filter(must=must))
            assert hits is not None
            return hits

    def _query(
        self, query: NDArray[np.float32], k: int, flt: qm.Filter | None, *, check_tenant: str | None = None
    ) -> list[Hit] | None:
        """The top ``k`` of a Qdrant query, ties by ascending id; None when a point fails ``check_tenant``.

        Qdrant orders equal scores arbitrarily, so the query asks for more points while the last one returned still
        ties with the ``k``-th, then sorts by (score, id) here.
        """
        from qdrant_client.http import models

        limit = k + 1
        while True:
            points = self._client.query_points(
                self._name(),
                query=query.tolist(),
                query_filter=flt,
                search_params=models.SearchParams(exact=True) if self.exact else None,
                limit=limit,
                with_payload=["tenant"] if check_tenant is not None else False,
                with_vectors=False,
            ).points
            if check_tenant is not None and any((p.payload or {}).get("tenant") != check_tenant for p in points):
                return None
            # Every point left out scores at most points[-1].score; below the k-th score, no tie was left out.
            if len(points) < limit or points[-1].score < points[k - 1].score:
                break
            limit *= 2
        ranked = sorted(((float(p.score), int(p.id)) for p in points), key=lambda p: (-p[0], p[1]))
        return [Hit(memory_id, score) for score, memory_id in ranked[:k]]

    def _tenant_filter_needed(self, seen: _Seen) -> bool:
        """Whether a search must filter by tenant inside Qdrant (see ``tenant_filter``).

        Skipping the filter is safe whatever the collection holds: every returned point's tenant is checked, and
        when all of the top ``k`` (and their ties) are the tenant's, they are also the tenant's own top ``k``. The
        point count only predicts whether that check will pass (it does when the collection is this tenant's alone).
        """
        if self.tenant_filter:
            return True
        return self._client.count(self._name(), exact=True).count != seen.count

    def delete(self, tenant: str, ids: Sequence[int]) -> None:
        """Delete ``tenant``'s points among ``ids`` now (ids of other tenants are left alone)."""
        require_tenant(tenant)
        if not len(ids) or self._store_dim() is None:
            return
        with self._errors("deleting vectors"):
            if not self._collection_exists():
                return
            wanted: list[qm.ExtendedPointId] = sorted({int(i) for i in ids})
            owned = [
                int(point.id)
                for start in range(0, len(wanted), self.scroll_size)
                for point in self._client.retrieve(
                    self._name(), ids=wanted[start : start + self.scroll_size], with_payload=["tenant"]
                )
                if (point.payload or {}).get("tenant") == tenant
            ]
            self._delete_points(owned)
        # SQLite's epoch moved with the rows; the next search of any tenant reconciles anyway.

    def ids(self, tenant: str) -> set[int]:
        """The memory ids whose vectors Qdrant holds for ``tenant``, after bringing it in step with SQLite."""
        require_tenant(tenant)
        if self._store_dim() is None:
            return set()
        with self._errors("listing vectors"):
            self._sync(tenant)
            if not self._collection_exists():
                return set()
            return {point_id for point_id, _ in self._held(tenant)}

    def rebuild(self) -> int:
        """Drop the collection and upload every tenant's vectors from SQLite; returns how many were uploaded."""
        dim = self._store_dim()
        self._seen.clear()
        if dim is None:
            return 0
        with self._errors("rebuilding the index"):
            if self._client.collection_exists(self._name()):
                self._client.delete_collection(self._name())
            self._ready = False
            total = 0
            for tenant in self.store.vector_tenants():
                self._reconcile_tenant(tenant, {})
                total += self._seen[tenant].count
        log.info("qdrant index %s rebuilt: %d vectors", self._name(), total)
        return total

    def reconcile(self) -> int:
        """Make Qdrant hold exactly SQLite's vectors, for every tenant either side knows; returns points changed.

        Points of tenants SQLite no longer has, and points without a tenant, are deleted.
        """
        dim = self._store_dim()
        if dim is None:
            return 0

        with self._errors("reconciling the index with SQLite"):
            self._ready = False  # re-check: the collection may have been dropped behind our back
            held_by_tenant: dict[str | None, dict[int, int | None]] = {}
            if self._collection_exists():
                for point in self._scroll(None, ["tenant", "crc"]):
                    payload = point.payload or {}
                    owner, crc = payload.get("tenant"), payload.get("crc")
                    held = held_by_tenant.setdefault(owner if isinstance(owner, str) and owner else None, {})
                    held[int(point.id)] = crc if isinstance(crc, int) else None
            changed = 0
            orphans = held_by_tenant.pop(None, {})
            if orphans:
                self._delete_points(list(orphans))
                changed += len(orphans)
            tenants = set(self.store.vector_tenants()) | {t for t in held_by_tenant if t is not None}
            for tenant in sorted(tenants):
                changed += self._reconcile_tenant(tenant, held_by_tenant.get(tenant, {}))
        return changed

    def close(self) -> None:
        """Close the client (and release the local folder's lock); further calls raise StoreError."""
        if not self._closed:
            self._closed = True
            self._seen.clear()
            self._client.close()

    @property
    def client(self) -> QdrantClient:
        """The underlying client, for inspection; writing through it puts the index out of step until reconcile()."""
        return self._client

    @property
    def collection_name(self) -> str | None:
        """The collection in use, ``{collection}_{dim}``; None while the store holds no vectors."""
        return None if self._store_dim() is None else self._name()

    def __len__(self) -> int:
        """The number of vectors this index last loaded, over the tenants it has seen."""
        return sum(seen.count for seen in self._seen.values())

    # ---- keeping in step with SQLite --------------------------------------------------------------------------

    def _sync(self, tenant: str) -> _Seen:
        """Bring ``tenant``'s points in step with SQLite: upload appended rows, or reconcile on anything else."""
        epoch, max_id, count = self.store.vector_state(tenant)
        seen = self._seen.get(tenant)
        if seen == _Seen(epoch, max_id, count):
            return seen
        if count == 0 and seen is None:
            # SQLite holds nothing of this tenant, so there is nothing valid to return and no need to ask Qdrant;
            # stray points of the tenant (written behind our back) go at the next reconcile().
            return _Seen(epoch, 0, 0)
        if seen is not None and seen.epoch == epoch and max_id > seen.max_id:
            new_ids, vectors = self.store.vectors_after(tenant, seen.max_id)
            if len(new_ids):
                self._upload(
                    tenant, new_ids, vectors, _Progress(f"qdrant {tenant!r}", len(new_ids), self.progress_every)
                )
                seen = _Seen(epoch, int(new_ids[-1]), seen.count + len(new_ids))
            # Equal counts mean nothing else changed; else (a vector added under an old id) reconcile below.
            if seen.count == count and seen.max_id >= max_id:
                self._seen[tenant] = seen
                return seen
        self._reconcile_tenant(tenant)
        return self._seen[tenant]

    def _reconcile_tenant(self, tenant: str, held: dict[int, int | None] | None = None) -> int:
        """Repair ``tenant``'s points against SQLite; returns how many points were deleted or uploaded.

        Args:
            tenant: whose points to repair.
            held: the tenant's points as {id: crc} when the caller has read them already (``{}`` after a drop).
        """
        epoch = self.store.vector_state(tenant)[0]  # read before the rows: a later removal moves it again
        if held is None:
            held = dict(self._held(tenant)) if self._collection_exists() else {}
        wanted = sorted(self.store.vector_ids(tenant))
        wanted_set = set(wanted)
        extra = [i for i in held if i not in wanted_set]
        if extra:
            self._delete_points(extra)  # points read back under this tenant's filter
        uploaded = loaded = max_id = 0
        progress = _Progress(f"qdrant {tenant!r}", len(wanted) - len(held) + len(extra), self.progress_every)
        for start in range(0, len(wanted), self.batch_size):
            ids, vectors = self.store.vectors_by_ids(tenant, wanted[start : start + self.batch_size])
            if not len(ids):
                continue
            loaded += len(ids)
            max_id = int(ids[-1])
            stale = np.fromiter(
                (held.get(int(i), -1) != _checksum(row) for i, row in zip(ids, vectors, strict=True)),
                dtype=bool,
                count=len(ids),
            )
            if stale.any():
                self._upload(tenant, ids[stale], vectors[stale], progress)
                uploaded += int(stale.sum())
        progress.finish()
        self._seen[tenant] = _Seen(epoch, max_id, loaded)
        if extra or uploaded:
            log.debug("qdrant tenant %r reconciled: %d deleted, %d uploaded", tenant, len(extra), uploaded)
        return len(extra) + uploaded

    # ---- Qdrant calls -----------------------------------------------------------------------------------------

    def _upload(self, tenant: str, ids: NDArray[np.int64], vectors: NDArray[np.float32], progress: _Progress) -> None:
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
                    payloads=[{"tenant": tenant, "crc": _checksum(row)} for row in part],
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

    def _search_fetched(
        self, tenant: str, query: NDArray[np.float32], k: int, ids: list[qm.ExtendedPointId]
    ) -> list[Hit]:
        """Score the points ``ids`` of ``tenant`` here: cosine of the stored (unit) vectors and the unit query."""
        records = [
            point
            for start in range(0, len(ids), self.scroll_size)
            for point in self._client.retrieve(
                self._name(), ids=ids[start : start + self.scroll_size], with_payload=["tenant"], with_vectors=True
            )
            if (point.payload or {}).get("tenant") == tenant and point.vector is not None
        ]
        if not records:
            return []
        point_ids = np.fromiter((int(point.id) for point in records), dtype=np.int64, count=len(records))
        matrix = np.asarray([point.vector for point in records], dtype=np.float32)
        norm = float(np.linalg.norm(query))
        scores = matrix @ (query / norm if norm > 0 else query)
        top = np.lexsort((point_ids, -scores))[:k]
        return [Hit(int(point_ids[i]), float(scores[i])) for i in top]

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
                f"Qdrant at {self.location} failed while {doing} ({_one_line(exc)}); check that it is running "
                "and reachable, then retry."
            ) from exc
