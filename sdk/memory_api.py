"""``hopmem.Memory``: a store, its embedder and hybrid search, opened from :class:`Settings`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hopmem.memory.embeddings import Embedder, load_embedder
from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import HybridSearcher
from hopmem.memory.ingest import Ingestor, IngestReport
from hopmem.memory.records import SearchResult
from hopmem.memory.store import MemoryStore, require_tenant
from hopmem.settings import Settings, get_settings


class Memory:
    """The user's memory: ingest documents, search them, inspect what is stored.

    Args:
        settings: configuration; read from the environment when omitted.
        tenant: the tenant every call acts for (default: ``settings.tenant``).
        path: the store file (default: ``settings.store_path``).
    """

    def __init__(
        self, settings: Settings | None = None, *, tenant: str | None = None, path: Path | None = None
    ) -> None:
        self.settings = settings or get_settings()
        self.tenant = require_tenant(tenant if tenant is not None else self.settings.tenant)
        self.store = MemoryStore(
            path or self.settings.store_path,
            busy_timeout_ms=self.settings.sqlite_busy_timeout_ms,
            title_weight=self.settings.bm25_title_weight,
            content_weight=self.settings.bm25_content_weight,
        )
        self._embedder: Embedder | None = None
        self._searcher: HybridSearcher | None = None

    @property
    def embedder(self) -> Embedder:
        """The embedding model (loaded on first use)."""
        if self._embedder is None:
            self._embedder = load_embedder(
                self.settings.embedder,
                batch_size=self.settings.embed_batch_size,
                max_seq_length=self.settings.embed_max_seq_length,
            )
        return self._embedder

    @property
    def searcher(self) -> HybridSearcher:
        if self._searcher is None:
            self._searcher = HybridSearcher(
                self.store,
                self.embedder,
                fusion=self.settings.fusion,
                rrf_k=self.settings.rrf_k,
                depth=self.settings.retrieve_depth,
            )
        return self._searcher

    def ingest(self, paths: Sequence[Path | str] | Path | str, *, progress: bool = True) -> IngestReport:
        """Read, chunk, embed and store files, folders and BEIR ``corpus.jsonl`` files."""
        if isinstance(paths, str | Path):
            paths = [paths]
        if not paths:
            raise InputError("No paths given; pass at least one file or folder to ingest.")
        ingestor = Ingestor(
            self.store,
            self.embedder,
            chunk_size=self.settings.chunk_size,
            chunk_overlap=self.settings.chunk_overlap,
            max_file_bytes=self.settings.max_file_bytes,
            max_content_chars=self.settings.max_content_chars,
        )
        return ingestor.ingest(self.tenant, list(paths), progress=progress)

    def search(self, query: str, *, k: int = 10, mode: str = "hybrid") -> list[SearchResult]:
        """The top ``k`` memories for ``query`` (``mode``: lexical, dense or hybrid)."""
        if mode == "lexical":
            searcher = HybridSearcher(self.store, None, fusion=self.settings.fusion, depth=self.settings.retrieve_depth)
            return searcher.search(self.tenant, query, k=k, mode=mode)
        return self.searcher.search(self.tenant, query, k=k, mode=mode)

    def stats(self) -> dict[str, Any]:
        return self.store.stats(self.tenant)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.stats()
        return f"Memory(path={s['path']!r}, tenant={self.tenant!r}, documents={s['documents']}, chunks={s['memories']})"
