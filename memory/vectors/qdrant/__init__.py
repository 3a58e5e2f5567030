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

The parts: :mod:`~hopmem.memory.vectors.qdrant.collection` (the Qdrant requests, the collection's state),
:mod:`~hopmem.memory.vectors.qdrant.sync` (keeping in step with SQLite: appends, reconcile, rebuild); this module
opens the client and holds the search.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.memory.errors import ConfigError, InputError, StoreError
from hopmem.memory.records import Hit
from hopmem.memory.sql_filters import require_tenant
from hopmem.memory.vectors.qdrant.collection import one_line
from hopmem.memory.vectors.qdrant.sync import QdrantSync, Seen

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from qdrant_client import QdrantClient
    from qdrant_client.http import models as qm

    from hopmem.memory.store import MemoryStore

log = logging.getLogger(__name__)


class QdrantVectorIndex(QdrantSync):
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
        self._seen: dict[str, Seen] = {}
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
                f"Cannot open the Qdrant index at {location} ({one_line(exc)}); check the location."
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

    def _tenant_filter_needed(self, seen: Seen) -> bool:
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
