"""``hopmem.Memory``: the user's memory (a store, its embedder, a vector index, hybrid search), opened from
:class:`Settings`.

Every call acts for one tenant, fixed when the object is made. Writes validate their input before a transaction
begins, so a bad call changes nothing.

Identity: a ``Memory`` opened with ``agent="planner"`` acts as that agent: every write, update and feedback is that
agent's, and naming another agent in a call is refused. Trust (``hopmem.memory.trust``) only ever reads identity
from here, never from a memory's metadata. A ``Memory`` opened without an agent is the user's own handle: its writes,
feedback and reviews are the user's, and it may label writes with an agent id (importing on an agent's behalf): the
text then counts as the agent's for the write gate and for memory trust, while provenance records that the user's
handle wrote it (``"via": "user"``), so that the user changing or erasing it later is no correction of the agent
(``hopmem.memory.trust.corrections``).
"""

from __future__ import annotations

import dataclasses
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
from hopmem.memory.errors import HopmemError, InputError
from hopmem.memory.hybrid import SEARCH_MODES, HybridSearcher
from hopmem.memory.ingest import Ingestor, IngestReport
from hopmem.memory.ltr import LearnedRanker
from hopmem.memory.records import AddResult, EraseReport, MemoryInput, MemoryRecord, SearchFilter, SearchResult
from hopmem.memory.store import MemoryStore, require_tenant
from hopmem.memory.trust.corrections import delete_hook, overwrite_hook
from hopmem.memory.trust.gate import WriteBlockedError, WriteGate
from hopmem.memory.trust.model import AgentTrust, TrustModel
from hopmem.memory.trust.quarantine import approve as approve_held
from hopmem.memory.trust.quarantine import held_writers, list_quarantine, rejection_hook
from hopmem.memory.vectors.base import VectorIndex
from hopmem.memory.vectors.registry import open_index
from hopmem.settings import Settings, get_settings

log = logging.getLogger(__name__)


class Memory:
    """The user's memory: write, search, update, erase and inspect memories and ingested documents.

    Args:
        settings: configuration; read from the environment when omitted.
        tenant: the tenant every call acts for (default: ``settings.tenant``).
        path: the store file (default: ``settings.store_path``).
        agent: the agent this handle acts as (its credentials); None is the user's own handle.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tenant: str | None = None,
        path: Path | None = None,
        agent: str | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.tenant = require_tenant(tenant if tenant is not None else self.settings.tenant)
        self.agent = check.agent_id(agent)
        self.store = MemoryStore(
            path or self.settings.store_path,
            busy_timeout_ms=self.settings.sqlite_busy_timeout_ms,
            title_weight=self.settings.bm25_title_weight,
            content_weight=self.settings.bm25_content_weight,
            lexical_backend=self.settings.lexical_backend,
            mmap_mb=self.settings.sqlite_mmap_mb,
        )
        self._embedder: Embedder | None = None
        self._index: VectorIndex | None = None
        self._searcher: HybridSearcher | None = None
        self._behaviour: BehaviourStore | None = None
        self._trust: TrustModel | None = None
        self._ranker: LearnedRanker | None = None
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
                trust=self.trust if self.settings.trust_ranking else None,
                ranker=self._learned_ranker(),
            )
        return self._searcher

    def _learned_ranker(self) -> LearnedRanker | None:
        """The ranking layer learned from feedback, when enabled and the behavioural file exists."""
        if not self.settings.ltr_enabled or not self.settings.behaviour_path.exists():
            return None
        if self._ranker is None:
            self._ranker = LearnedRanker(self.behaviour.conn, self.trust, min_feedback=self.settings.ltr_min_feedback)
        return self._ranker

    def train_ranker(self) -> dict[str, Any] | None:
        """Fit the ranking layer on this tenant's feedback (see :mod:`hopmem.memory.ltr`).

        Returns:
            What was trained (queries, pairs, events, weights), or None while there is too little feedback
            (``ltr_min_feedback``): the layer stays off.
        """
        _ = self.behaviour  # creates the behavioural file
        ranker = self._learned_ranker() or LearnedRanker(
            self.behaviour.conn, self.trust, min_feedback=self.settings.ltr_min_feedback
        )
        searcher = self.searcher
        info = ranker.train(
            self.store,
            self.tenant,
            lambda query: searcher.ranked_lists(self.tenant, query, "hybrid"),
            searcher.fuse,
            max_queries=self.settings.ltr_max_queries,
        )
        if info is not None and self.settings.ltr_enabled:
            searcher.ranker = ranker
        return info

    @property
    def trust(self) -> TrustModel:
        """The trust model of this store (agents' Beta trust, signals, memory trust)."""
        if self._trust is None:
            self._trust = TrustModel(self.store.conn, self.settings.trust_params())
        return self._trust

    def _identity(self, agent: object) -> str | None:
        """Who acts: this handle's agent; a different ``agent`` argument on an agent's handle is refused."""
        named = check.agent_id(agent)
        if self.agent is None:
            return named
        if named is not None and named != self.agent:
            raise InputError(
                f"This Memory acts as agent {self.agent!r} and cannot act as {named!r}; open a Memory with that agent."
            )
        return self.agent

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
        derived_from: Sequence[int] | None = None,
    ) -> MemoryRecord:
        """Remember one piece of text; returns the stored memory (the existing one when the text was known).

        Args:
            derived_from: ids of the memories this text was made from; its trust can be no higher than theirs.

        The returned record has ``quarantined=True`` when the trust gate held the write for review: it is stored but
        invisible to every read until the user approves it (:meth:`approve`).

        Raises:
            WriteBlockedError: when the trust checks failed; nothing was written.
        """
        item = self._input(content, title, tags, metadata, agent, source_class, importance, source)
        if derived_from:
            parents = [check.memory_id(i) for i in derived_from]
            found = {r.id for r in self.store.get(self.tenant, parents)}
            missing = [i for i in parents if i not in found]
            if missing:
                raise InputError(f"derived_from names memory {missing[0]}, which is not in tenant {self.tenant!r}.")
            trusts = self.trust.memory_trusts(self.tenant, parents)
            item = dataclasses.replace(
                item, derived_from=tuple(dict.fromkeys(parents)), parent_trust=min(trusts.values())
            )
        result = self._write([item])[0]
        if result.quarantined:
            return self.store.get(self.tenant, [result.id], include_quarantined=True)[0]
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
            agent=self._identity(agent),
            source_class_=source_class,
            importance_=importance,
            source=source,
        )
        if item.source_class == "document":
            raise InputError("Source class 'document' is for ingested files; use Memory.ingest, or another class.")
        if self.agent is None and item.agent_id is not None:
            item = dataclasses.replace(item, on_behalf=True)
        return item

    def _write(self, items: list[MemoryInput]) -> list[AddResult]:
        texts = [f"{i.title}\n{i.content}" if i.title else i.content for i in items]
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        gate = WriteGate(self.store, self.trust, self.index, enabled=self.settings.trust_gate)
        try:
            plan = gate.plan(self.tenant, items, vectors)
            hook = gate.hook(self.tenant, items, plan)
        except HopmemError:
            raise
        except Exception as exc:  # fail closed: a write the trust code cannot vouch for is not written
            log.exception("the trust check failed; the write was blocked")
            raise WriteBlockedError(
                f"The trust check failed ({type(exc).__name__}: {exc}), so nothing was written; see the log and retry."
            ) from exc
        try:
            results = self.store.add_memories(
                self.tenant, items, vectors, embedder=self._embedder_key(), hold=plan.hold, hook=hook
            )
        except HopmemError:
            raise
        except Exception as exc:  # the hook failed inside the transaction, which rolled the write back
            log.exception("the trust bookkeeping failed; the write was rolled back")
            raise WriteBlockedError(
                f"The trust bookkeeping failed ({type(exc).__name__}: {exc}), so nothing was written; see the log."
            ) from exc
        if plan.held:
            log.warning("%d of %d writes quarantined for review (hopmem memory quarantine list)", plan.held, len(items))
        return results

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
        """Change a memory; the change (who, when, which fields, why) is appended to its provenance chain.

        The user's change of the content of an agent's fresh memory counts against that agent
        (:mod:`hopmem.memory.trust.corrections`); the signal commits with the change.
        """
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
        who = self._identity(agent)
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
        if who is not None and self.settings.trust_gate:
            trust = self.trust.agent_trust(self.tenant, who).mean
            if trust < self.settings.trust_threshold:
                raise WriteBlockedError(
                    f"Agent {who!r} has trust {trust:.2f}, below {self.settings.trust_threshold:.2f}, so it may not "
                    "change memories; the user can make the change."
                )
        hook = (
            overwrite_hook(self.trust, self.tenant, changes["content"])
            if who is None and "content" in changes
            else None
        )
        return self.store.update_memory(
            self.tenant,
            mid,
            changes,
            vector,
            embedder=embedder,
            agent_id=who,
            reason=reason,
            on_behalf=self.agent is None and who is not None,
            hook=hook,
        )

    def feedback(self, memory_id: int, kind: str = "up", *, query: str | None = None, agent: str | None = None) -> int:
        """Record feedback (``up``, ``down`` or ``click``) on a memory, in the behavioural file.

        It is also a trust signal about the memory's writer: ``up`` confirms (``click`` half as much), ``down`` counts
        against, weighted by who gives it (the user, or an agent in proportion to its trust). Feedback an agent gives
        on its own memory changes nothing.
        """
        mid = check.memory_id(memory_id)
        if kind not in FEEDBACK_KINDS:
            raise InputError(f"Unknown feedback {kind!r}; use one of {', '.join(FEEDBACK_KINDS)}.")
        who = self._identity(agent)
        record = self.get(mid)
        event = self.behaviour.record(self.tenant, mid, kind, query=query, agent_id=who)
        if record.agent_id is not None:
            scale = self.trust.confirmation_scale(self.tenant, who)
            if kind == "down":
                self.trust.signal(self.tenant, record.agent_id, "feedback_down", by=who, scale=scale, memory_id=mid)
            else:
                scale *= 1.0 if kind == "up" else 0.5
                self.trust.signal(self.tenant, record.agent_id, "confirmed", by=who, scale=scale, memory_id=mid)
        ranker = self._learned_ranker()
        if ranker is not None:
            events = self.behaviour.count(self.tenant)
            due = events - ranker.trained_events(self.tenant) >= self.settings.ltr_retrain_every
            if events >= self.settings.ltr_min_feedback and due:
                self.train_ranker()
        return event

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
        the tenant (memories, documents, agents, feedback, conversations) and takes no other selector. The user's
        erase of agents' fresh memories counts against them (:mod:`hopmem.memory.trust.corrections`); the signal
        commits with the erase.
        """
        eraser = self._eraser()
        try:
            if everything:
                if ids is not None or any(v is not None for v in (agent, tags, source_class, since, until)):
                    raise InputError("Erasing everything takes no other selector; drop the ids and filters.")
                if self._ranker is not None:
                    self._ranker.forget(self.tenant)
                return eraser.erase_tenant(self.tenant)
            filters = check.search_filter(
                agent=agent, tags_=tags, source_classes=source_class, since=since, until=until
            )
            if ids is None and filters.empty:
                raise InputError("Say what to erase: ids, a filter (agent, tags, source class, time), or everything.")
            chosen = (
                self.store.filtered_ids(self.tenant, filters, include_quarantined=True) if not filters.empty else None
            )
            if ids is not None:
                wanted = [check.memory_id(i) for i in ([ids] if isinstance(ids, int | str) else ids)]
                chosen = wanted if chosen is None else sorted(set(wanted) & set(chosen))
            return eraser.erase_ids(
                self.tenant,
                chosen or [],
                reason="ids" if filters.empty else "filter",
                hook=delete_hook(self.trust, self.tenant) if self.agent is None else None,
            )
        finally:
            for extra in eraser.indexes:
                if extra is not self._index:
                    extra.close()

    # ---- trust and quarantine -------------------------------------------------------------------------------

    def trust_of(self, agent: str | None = None) -> list[AgentTrust]:
        """The trust of ``agent``, or of every agent of the tenant (most trusted first)."""
        if agent is not None:
            return [self.trust.agent_trust(self.tenant, check.agent_id(agent) or "")]
        return self.trust.all_agents(self.tenant)

    def trust_history(self, agent: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The latest trust signals about ``agent`` (oldest first), each with the trust after it."""
        return self.trust.history(self.tenant, check.agent_id(agent) or "", limit=limit)

    def memory_trust(self, ids: Sequence[int]) -> dict[int, float]:
        """The trust of each memory among ``ids``: the minimum along its provenance chain."""
        return self.trust.memory_trusts(self.tenant, [check.memory_id(i) for i in ids])

    def quarantine(self) -> list[dict[str, Any]]:
        """The writes held for review (id, agent, reason, when, title, content), oldest first."""
        return list_quarantine(self.store, self.tenant)

    def _require_user(self, what: str) -> None:
        if self.agent is not None:
            raise InputError(f"Only the user can {what} quarantined memories; use a Memory opened without an agent.")

    def approve(self, ids: int | Sequence[int], *, note: str | None = None) -> list[int]:
        """Release quarantined memories: they become visible, and their writers get an ``approved`` signal.

        Raises:
            InputError: when called on an agent's handle, or an id is not in quarantine.
        """
        self._require_user("approve")
        wanted = [check.memory_id(i) for i in ([ids] if isinstance(ids, int | str) else ids)]
        return approve_held(self.store, self.tenant, wanted, note=note, model=self.trust)

    def reject(self, ids: int | Sequence[int]) -> EraseReport:
        """Erase quarantined memories for good (the one erase path), with a ``rejected`` signal to their writers.

        Raises:
            InputError: when called on an agent's handle, or an id is not in quarantine.
        """
        self._require_user("reject")
        wanted = [check.memory_id(i) for i in ([ids] if isinstance(ids, int | str) else ids)]
        writers = held_writers(self.store, self.tenant, wanted)
        eraser = self._eraser()
        try:
            return eraser.erase_ids(
                self.tenant, wanted, reason="quarantine.reject", hook=rejection_hook(self.trust, self.tenant, writers)
            )
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
            searcher = HybridSearcher(
                self.store,
                None,
                fusion=self.settings.fusion,
                depth=self.settings.retrieve_depth,
                trust=self.trust if self.settings.trust_ranking else None,
            )
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
