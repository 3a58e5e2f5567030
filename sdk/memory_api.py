"""``hopmem.Memory``: the user's memory (a store, its embedder, a vector index, hybrid search), opened from
:class:`Settings`.

Every call acts for one tenant, fixed when the object is made. Writes validate their input before a transaction
begins, so a bad call changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hopmem.memory import validation as check
from hopmem.memory.behaviour import FEEDBACK_KINDS, BehaviourStore
from hopmem.memory.embeddings import Embedder, load_embedder
from hopmem.memory.erasure import Eraser
from hopmem.memory.errors import InputError
from hopmem.memory.hybrid import SEARCH_MODES, HybridSearcher
from hopmem.memory.indexes import open_index
from hopmem.memory.ingest import Ingestor, IngestReport
from hopmem.memory.records import AddResult, EraseReport, MemoryInput, MemoryRecord, SearchFilter, SearchResult
from hopmem.memory.store import MemoryStore, require_tenant
from hopmem.memory.vector_base import VectorIndex
from hopmem.settings import Settings, get_settings

log = logging.getLogger(__name__)


class Memory:
    """The user's memory: write, search, update, erase and inspect memories and ingested documents.

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
            lexical_backend=self.settings.lexical_backend,
        )
        self._embedder: Embedder | None = None
        self._index: VectorIndex | None = None
        self._searcher: HybridSearcher | None = None
        self._behaviour: BehaviourStore | None = None
        if self.settings.vector_backend != "exact":
            _ = self.index  # opening a derived index reconciles it with SQLite

    # ---- components (opened on first use) -------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The embedding model (loaded on first use)."""
        if self._embedder is None:
            self._embedder = load_embedder(
                self.settings.embedder,
                **self.settings.embedder_options(),
            )
        return self._embedder

    @property
    def index(self) -> VectorIndex:
        """The vector index of ``settings.vector_backend``."""
        if self._index is None:
            self._index = open_index(
                self.store,
                self.settings.vector_backend,
                qdrant_location=self.settings.qdrant_target,
                qdrant_collection=self.settings.qdrant_collection,
            )
        return self._index

    @property
    def searcher(self) -> HybridSearcher:
        if self._searcher is None:
            self._searcher = HybridSearcher(
                self.store,
                self.embedder,
                index=self.index,
                fusion=self.settings.fusion,
                rrf_k=self.settings.rrf_k,
                depth=self.settings.retrieve_depth,
            )
        return self._searcher

    @property
    def behaviour(self) -> BehaviourStore:
        """The behavioural file (feedback), opened on first use."""
        if self._behaviour is None:
            self._behaviour = BehaviourStore(
                self.settings.behaviour_path, busy_timeout_ms=self.settings.sqlite_busy_timeout_ms
            )
        return self._behaviour

    def _embedder_key(self) -> tuple[str, int]:
        emb = self.embedder
        return emb.name, emb.dim

    # ---- writes ---------------------------------------------------------------------------------------------

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

    def add(
        self,
        content: str,
        *,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        agent: str | None = None,
        source_class: str = "user",
        importance: float = 0.5,
        source: str | None = None,
    ) -> MemoryRecord:
        """Remember one piece of text; returns the stored memory (the existing one when the text was known)."""
        item = self._input(content, title, tags, metadata, agent, source_class, importance, source)
        result = self._write([item])[0]
        return self.get(result.id)

    def add_many(
        self,
        items: Iterable[str | Mapping[str, Any]],
        *,
        agent: str | None = None,
        source_class: str = "user",
        batch_size: int | None = None,
        progress: bool = True,
    ) -> list[AddResult]:
        """Remember many texts: embedded in batches, each batch written in one transaction.

        Args:
            items: strings, or mappings with ``content`` and optionally ``title``, ``tags``, ``metadata``, ``agent``,
                ``source_class``, ``importance``, ``source``.
            agent: the writing agent for items that name none.
            source_class: the source class for items that name none.
            batch_size: items per batch (default: ``settings.embed_batch_size``).
            progress: show a progress bar.

        All items are validated before the first write: one bad item fails the call and writes nothing.
        """
        inputs: list[MemoryInput] = []
        for position, item in enumerate(items):
            try:
                if isinstance(item, str):
                    inputs.append(self._input(item, None, None, None, agent, source_class, 0.5, None))
                elif isinstance(item, Mapping):
                    unknown = set(item) - {
                        "content", "title", "tags", "metadata", "agent", "source_class", "importance", "source",
                    }  # fmt: skip
                    if unknown:
                        raise InputError(f"unknown field(s) {', '.join(sorted(unknown))}")
                    inputs.append(
                        self._input(
                            item.get("content"),
                            item.get("title"),
                            item.get("tags"),
                            item.get("metadata"),
                            item.get("agent", agent),
                            item.get("source_class", source_class),
                            item.get("importance", 0.5),
                            item.get("source"),
                        )
                    )
                else:
                    raise InputError(f"expected a string or a mapping, not {type(item).__name__}")
            except InputError as exc:
                raise InputError(f"Item {position} of add_many is invalid: {str(exc).rstrip('.')}.") from exc
        size = batch_size or self.settings.embed_batch_size * 4
        results: list[AddResult] = []
        with tqdm(total=len(inputs), desc="remembering", unit="mem", disable=not progress or len(inputs) < size) as bar:
            for start in range(0, len(inputs), size):
                results.extend(self._write(inputs[start : start + size]))
                bar.update(min(size, len(inputs) - start))
        return results

    def _input(
        self,
        content: object,
        title: object,
        tags: object,
        metadata: object,
        agent: object,
        source_class: object,
        importance: object,
        source: object,
    ) -> MemoryInput:
        item = check.memory_input(
            content,
            max_chars=self.settings.max_memory_chars,
            title_=title,
            tags_=tags,
            metadata_=metadata,
            agent=agent,
            source_class_=source_class,
            importance_=importance,
            source=source,
        )
        if item.source_class == "document":
            raise InputError("Source class 'document' is for ingested files; use Memory.ingest, or another class.")
        return item

    def _write(self, items: list[MemoryInput]) -> list[AddResult]:
        texts = [f"{i.title}\n{i.content}" if i.title else i.content for i in items]
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        return self.store.add_memories(self.tenant, items, vectors, embedder=self._embedder_key())

    def update(
        self,
        memory_id: int,
        *,
        content: str | None = None,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        importance: float | None = None,
        agent: str | None = None,
        reason: str | None = None,
    ) -> MemoryRecord:
        """Change a memory; the change (who, when, which fields, why) is appended to its provenance chain."""
        mid = check.memory_id(memory_id)
        current = self.get(mid)
        changes: dict[str, Any] = {}
        if content is not None:
            changes["content"] = check.content(content, max_chars=self.settings.max_memory_chars)
        if title is not None:
            changes["title"] = check.title(title)
        if tags is not None:
            changes["tags"] = check.tags(tags)
        if metadata is not None:
            changes["metadata"] = check.metadata(metadata)
        if importance is not None:
            changes["importance"] = check.importance(importance)
        who = check.agent_id(agent)
        if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
            raise InputError("The reason must be a string of at most 1,000 characters.")
        if not changes:
            raise InputError("Nothing to update; pass content, title, tags, metadata or importance.")
        vector = None
        embedder = None
        if "content" in changes or "title" in changes:
            new_title = changes.get("title", current.title)
            new_content = changes.get("content", current.content)
            text = f"{new_title}\n{new_content}" if new_title else new_content
            vector = np.asarray(self.embedder.embed([text])[0], dtype=np.float32)
            embedder = self._embedder_key()
        return self.store.update_memory(
            self.tenant, mid, changes, vector, embedder=embedder, agent_id=who, reason=reason
        )

    def feedback(self, memory_id: int, kind: str = "up", *, query: str | None = None, agent: str | None = None) -> int:
        """Record feedback (``up``, ``down`` or ``click``) on a memory, in the behavioural file."""
        mid = check.memory_id(memory_id)
        if kind not in FEEDBACK_KINDS:
            raise InputError(f"Unknown feedback {kind!r}; use one of {', '.join(FEEDBACK_KINDS)}.")
        self.get(mid)
        return self.behaviour.record(self.tenant, mid, kind, query=query, agent_id=check.agent_id(agent))

    def erase(
        self,
        ids: int | Sequence[int] | None = None,
        *,
        agent: str | None = None,
        tags: Sequence[str] | None = None,
        source_class: str | Sequence[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        everything: bool = False,
    ) -> EraseReport:
        """Erase memories for good: by id, by filter (agent, tags, source class, time range), or the whole tenant.

        Selectors combine: ids and a filter erase the listed ids that pass the filter. ``everything=True`` erases
        the tenant (memories, documents, agents, feedback, conversations) and takes no other selector.
        """
        eraser = self._eraser()
        try:
            if everything:
                if ids is not None or any(v is not None for v in (agent, tags, source_class, since, until)):
                    raise InputError("Erasing everything takes no other selector; drop the ids and filters.")
                return eraser.erase_tenant(self.tenant)
            filters = check.search_filter(
                agent=agent, tags_=tags, source_classes=source_class, since=since, until=until
            )
            if ids is None and filters.empty:
                raise InputError("Say what to erase: ids, a filter (agent, tags, source class, time), or everything.")
            chosen = self.store.filtered_ids(self.tenant, filters) if not filters.empty else None
            if ids is not None:
                wanted = [check.memory_id(i) for i in ([ids] if isinstance(ids, int | str) else ids)]
                chosen = wanted if chosen is None else sorted(set(wanted) & set(chosen))
            return eraser.erase_ids(self.tenant, chosen or [], reason="ids" if filters.empty else "filter")
        finally:
            for extra in eraser.indexes:
                if extra is not self._index:
                    extra.close()

    def _eraser(self) -> Eraser:
        indexes: list[VectorIndex] = [self.index]
        other = Path(self.settings.qdrant_target)
        if self.settings.vector_backend != "qdrant" and other.is_dir() and any(other.iterdir()):
            indexes.append(
                open_index(
                    self.store,
                    "qdrant",
                    qdrant_location=str(other),
                    qdrant_collection=self.settings.qdrant_collection,
                )
            )
        behaviour = self.behaviour if self.settings.behaviour_path.exists() else None
        return Eraser(
            self.store,
            indexes,
            behaviour,
            self.settings.checkpoint_path,
            busy_timeout_ms=self.settings.sqlite_busy_timeout_ms,
        )

    def reindex(self) -> int:
        """Rebuild the vector index from SQLite; returns how many vectors it holds."""
        return self.index.rebuild()

    # ---- reads ----------------------------------------------------------------------------------------------

    def get(self, memory_id: int) -> MemoryRecord:
        """One memory of this tenant.

        Raises:
            InputError: when there is no such memory in this tenant.
        """
        mid = check.memory_id(memory_id)
        found = self.store.get(self.tenant, [mid])
        if not found:
            raise InputError(f"There is no memory {mid} in tenant {self.tenant!r}; check the id.")
        return found[0]

    def get_many(self, ids: Sequence[int]) -> list[MemoryRecord]:
        """The memories of this tenant among ``ids`` (unknown ids are left out)."""
        return self.store.get(self.tenant, [check.memory_id(i) for i in ids])

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        agent: str | None = None,
        tags: Sequence[str] | None = None,
        source_class: str | Sequence[str] | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SearchResult]:
        """The top ``k`` memories for ``query`` (``mode``: lexical, dense or hybrid), optionally filtered."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
            raise InputError(f"k must be an integer from 1 to 1000, not {k!r}.")
        if mode not in SEARCH_MODES:
            raise InputError(f"Unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}.")
        filters: SearchFilter = check.search_filter(
            agent=agent, tags_=tags, source_classes=source_class, since=since, until=until
        )
        if mode == "lexical":
            searcher = HybridSearcher(self.store, None, fusion=self.settings.fusion, depth=self.settings.retrieve_depth)
            return searcher.search(self.tenant, query, k=k, mode=mode, filters=filters)
        return self.searcher.search(self.tenant, query, k=k, mode=mode, filters=filters)

    def export(self) -> Iterator[MemoryRecord]:
        """Every memory of this tenant, oldest first."""
        return self.store.export(self.tenant)

    def stats(self) -> dict[str, Any]:
        data = self.store.stats(self.tenant)
        data["vector_backend"] = self.settings.vector_backend
        if self.settings.behaviour_path.exists():
            data["feedback"] = self.behaviour.count(self.tenant)
        return data

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
        if self._behaviour is not None:
            self._behaviour.close()
        self.store.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.store.stats(self.tenant)
        return (
            f"Memory(path={s['path']!r}, tenant={self.tenant!r}, documents={s['documents']}, memories={s['memories']})"
        )
