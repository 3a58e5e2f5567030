"""Writes: ingest files, remember texts (through the trust gate), change a memory.

Every write validates its whole input before a transaction begins, so a bad call changes nothing, and a write the
trust code cannot vouch for is not written (it fails closed with :class:`WriteBlockedError`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hopmem.memory import validation as check
from hopmem.memory.engine.core import EngineCore
from hopmem.memory.errors import HopmemError, InputError
from hopmem.memory.ingest import Ingestor, IngestReport
from hopmem.memory.records import AddResult, MemoryInput, MemoryRecord
from hopmem.memory.trust.corrections import overwrite_hook
from hopmem.memory.trust.gate import WriteBlockedError, WriteGate

log = logging.getLogger(__name__)


class WritesMixin(EngineCore):
    """Ingest, add, add_many and update; see :class:`~hopmem.memory.engine.MemoryEngine`."""

    def ingest(self, paths: Sequence[Path | str] | Path | str, *, progress: bool = True) -> IngestReport:
        """Read, chunk, embed and store files, folders and BEIR ``corpus.jsonl`` files."""
        if isinstance(paths, str | Path):
            paths = [paths]
        if not paths:
            raise InputError("No paths given; pass at least one file or folder to ingest.")
        ingestor = Ingestor(
            self.store,
            self.embedder,
            chunk_size=self.config.chunk_size,
            chunk_overlap=self.config.chunk_overlap,
            max_file_bytes=self.config.max_file_bytes,
            max_content_chars=self.config.max_content_chars,
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
            batch_size: items per batch (default: ``embed_batch_size``, times four).
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
        size = batch_size or self.config.embed_batch_size * 4
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
            max_chars=self.config.max_memory_chars,
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

    def _write(self, items: list[MemoryInput], embed_texts: Sequence[str] | None = None) -> list[AddResult]:
        """Embed and store one batch through the trust gate; ``embed_texts`` (one per item) replaces the text the
        vectors are made from (default: title and content), e.g. a conversation turn with its neighbours."""
        texts = (
            list(embed_texts)
            if embed_texts is not None
            else [f"{i.title}\n{i.content}" if i.title else i.content for i in items]
        )
        vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        gate = WriteGate(self.store, self.trust, self.index, enabled=self.config.trust_gate)
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

        Agents may edit each other's memories (the memory's trust is then the lowest of its writers'), but a change of
        the content made as an agent (its handle, or the user's handle labelling it) meets the trust gate's
        contradiction check, as a new write does: against trusted memories of other writers, the changed memory's own
        text included when another writer wrote it. Otherwise rewriting a trusted memory would pass every defence a
        new write meets. A change the gate would hold is refused (a change cannot wait in quarantine); written as a
        new memory instead, it goes to the user's review. A refused change counts against the agent as a held
        contradicting write does.

        Raises:
            InputError: on bad input or an unknown id.
            WriteBlockedError: when the agent's trust is below the threshold, or the new content contradicts a
                trusted memory of another writer.
        """
        mid = check.memory_id(memory_id)
        current = self.get(mid)
        changes: dict[str, Any] = {}
        if content is not None:
            changes["content"] = check.content(content, max_chars=self.config.max_memory_chars)
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
        if who is not None and self.config.trust_gate:
            trust = self.trust.agent_trust(self.tenant, who).mean
            if trust < self.config.trust_threshold:
                raise WriteBlockedError(
                    f"Agent {who!r} has trust {trust:.2f}, below {self.config.trust_threshold:.2f}, so it may not "
                    "change memories; the user can make the change."
                )
        if who is not None and "content" in changes and vector is not None and self.config.trust_gate:
            self._check_changed_text(current, changes, who, vector)
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

    def _check_changed_text(
        self, current: MemoryRecord, changes: Mapping[str, Any], who: str, vector: np.ndarray[Any, Any]
    ) -> None:
        """Refuse a change of text by agent ``who`` that contradicts a trusted memory of another writer; a finding
        strong enough to signal on a new write (not the paraphrase tier, not review-only) counts against ``who`` the
        same way, so that retrying refused rewrites costs the attacker its trust."""
        item = MemoryInput(
            content=changes.get("content", current.content),
            title=changes.get("title", current.title) or "",
            agent_id=who,
            source_class=current.source_class,
        )
        gate = WriteGate(self.store, self.trust, self.index, enabled=True)
        try:
            found = gate.contradicted(self.tenant, item, np.asarray(vector, dtype=np.float32))
        except HopmemError:
            raise
        except Exception as exc:  # fail closed, as a new write does
            log.exception("the trust check of a change failed; the change was blocked")
            raise WriteBlockedError(
                f"The trust check failed ({type(exc).__name__}: {exc}), so nothing was changed; see the log and retry."
            ) from exc
        if found is not None:
            if found.signals:  # the same evidence against the writer as a held new write gives
                self.trust.signal(
                    self.tenant,
                    who,
                    "contradiction",
                    memory_id=current.id,
                    detail={"contradicts": found.memory_id, "why": found.why, "change": True},
                )
            raise WriteBlockedError(
                f"The new text contradicts trusted memory {found.memory_id} ({found.why}), so memory {current.id} was "
                "not changed; add it as a new memory to put it up for the user's review."
            )
