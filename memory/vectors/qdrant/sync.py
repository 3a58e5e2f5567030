"""Keeping the Qdrant collection in step with SQLite's embeddings: appends cheaply, anything else by reconciling.

How (see also :mod:`hopmem.memory.vectors.qdrant`): each tenant's ``vector_state`` (epoch, max id, count) is
compared with what was last loaded (:class:`Seen`); only appends upload just the new rows, anything else compares
Qdrant's point ids and checksums with SQLite's and repairs the difference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from hopmem.memory.vectors.qdrant.collection import QdrantCollection, UploadProgress, checksum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Seen:
    """What this index last loaded of one tenant, in the terms of ``MemoryStore.vector_state``."""

    epoch: int
    max_id: int
    count: int


class QdrantSync(QdrantCollection):
    """Reconciling and rebuilding the collection from SQLite, per tenant and whole."""

    _seen: dict[str, Seen]

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

    def _sync(self, tenant: str) -> Seen:
        """Bring ``tenant``'s points in step with SQLite: upload appended rows, or reconcile on anything else."""
        epoch, max_id, count = self.store.vector_state(tenant)
        seen = self._seen.get(tenant)
        if seen == Seen(epoch, max_id, count):
            return seen
        if count == 0 and seen is None:
            # SQLite holds nothing of this tenant, so there is nothing valid to return and no need to ask Qdrant;
            # stray points of the tenant (written behind our back) go at the next reconcile().
            return Seen(epoch, 0, 0)
        if seen is not None and seen.epoch == epoch and max_id > seen.max_id:
            new_ids, vectors = self.store.vectors_after(tenant, seen.max_id)
            if len(new_ids):
                self._upload(
                    tenant, new_ids, vectors, UploadProgress(f"qdrant {tenant!r}", len(new_ids), self.progress_every)
                )
                seen = Seen(epoch, int(new_ids[-1]), seen.count + len(new_ids))
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
        progress = UploadProgress(f"qdrant {tenant!r}", len(wanted) - len(held) + len(extra), self.progress_every)
        for start in range(0, len(wanted), self.batch_size):
            ids, vectors = self.store.vectors_by_ids(tenant, wanted[start : start + self.batch_size])
            if not len(ids):
                continue
            loaded += len(ids)
            max_id = int(ids[-1])
            stale = np.fromiter(
                (held.get(int(i), -1) != checksum(row) for i, row in zip(ids, vectors, strict=True)),
                dtype=bool,
                count=len(ids),
            )
            if stale.any():
                self._upload(tenant, ids[stale], vectors[stale], progress)
                uploaded += int(stale.sum())
        progress.finish()
        self._seen[tenant] = Seen(epoch, max_id, loaded)
        if extra or uploaded:
            log.debug("qdrant tenant %r reconciled: %d deleted, %d uploaded", tenant, len(extra), uploaded)
        return len(extra) + uploaded
