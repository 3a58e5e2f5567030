"""What a browsing face lists: the documents of a tenant with their chunk counts, a document's chunk ids, and the
newest memories that pass a filter (no query)."""

from __future__ import annotations

from typing import Any

from hopmem.memory.records import SearchFilter
from hopmem.memory.sql_filters import VISIBLE_SQL, filter_sql, require_tenant
from hopmem.memory.store.base import StoreBase


class StoreCatalog(StoreBase):
    """Listings of documents and memories; every query filters by tenant and hides quarantined memories."""

    def list_documents(self, tenant: str) -> list[dict[str, Any]]:
        """The documents of ``tenant`` (newest first): id, source, title, chunk counts and when they were stored.

        ``chunks`` counts the chunk memories stored now (erasing single chunks lowers it); ``n_chunks`` is what the
        ingest wrote.
        """
        rows = self.conn.execute(
            "SELECT d.id, d.source, d.title, d.n_chunks, d.created_at,"
            f" (SELECT count(*) FROM memories m WHERE m.document_id = d.id AND {VISIBLE_SQL}) AS chunks"
            " FROM documents d WHERE d.tenant = ? ORDER BY d.created_at DESC, d.id DESC",
            (require_tenant(tenant),),
        ).fetchall()
        return [
            {
                "document_id": int(r["id"]),
                "source": str(r["source"]),
                "title": str(r["title"] or ""),
                "chunks": int(r["chunks"]),
                "n_chunks": int(r["n_chunks"]),
                "created_at": float(r["created_at"]),
            }
            for r in rows
        ]

    def document_memory_ids(self, tenant: str, source: str) -> list[int]:
        """The ids of every chunk of the document ``source`` of ``tenant`` (empty when it is not stored)."""
        require_tenant(tenant)
        return [
            int(r[0])
            for r in self.conn.execute(
                "SELECT m.id FROM memories m JOIN documents d ON d.id = m.document_id"
                " WHERE d.tenant = ? AND d.source = ? AND m.tenant = ? ORDER BY m.id",
                (tenant, source, tenant),
            )
        ]

    def recent_ids(self, tenant: str, filters: SearchFilter, *, limit: int) -> list[int]:
        """The ids of ``tenant``'s visible memories that pass ``filters``, newest first, at most ``limit``."""
        require_tenant(tenant)
        where, params = filter_sql(filters)
        sql = f"SELECT m.id FROM memories m WHERE m.tenant = ?{where} ORDER BY m.created_at DESC, m.id DESC LIMIT ?"
        return [int(r[0]) for r in self.conn.execute(sql, (tenant, *params, limit))]
