"""Plain result and input classes shared by the memory layer and everything above it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Hit:
    """One entry of a ranked list: a memory id and the retriever's score (higher is better)."""

    memory_id: int
    score: float


@dataclass
class MemoryRecord:
    """A stored memory (a document chunk or a written memory) as read back from the store."""

    id: int
    tenant: str
    title: str
    content: str
    source_class: str
    document_id: int | None = None
    chunk_index: int | None = None
    source: str | None = None
    external_id: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    agent_id: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    last_accessed: float | None = None
    access_count: int = 0
    importance: float = 0.5
    content_hash: str = ""
    provenance: list[dict[str, Any]] = field(default_factory=list)
    quarantined: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResult:
    """A memory found by a search, with the fused score and each retriever's rank (1-based) where it appeared."""

    record: MemoryRecord
    score: float
    ranks: dict[str, int] = field(default_factory=dict)
    trust: float | None = None

    @property
    def id(self) -> int:
        return self.record.id

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.record.id,
            "title": self.record.title,
            "text": self.record.content,
            "score": round(self.score, 6),
            "source": self.record.source,
            "external_id": self.record.external_id,
            "ranks": self.ranks,
            "source_class": self.record.source_class,
            "agent": self.record.agent_id,
            "trust": None if self.trust is None else round(self.trust, 4),
        }


@dataclass(frozen=True)
class DocumentInput:
    """A document ready to store: its chunks and their embeddings are computed before any write begins."""

    source: str
    title: str
    content_hash: str
    chunks: list[str]
    external_id: str | None = None


@dataclass
class DocumentWrite:
    """What storing one document did: ``added``, ``replaced`` (content changed) or ``unchanged``."""

    source: str
    status: str
    document_id: int
    n_chunks: int


SOURCE_CLASSES: tuple[str, ...] = ("document", "user", "agent", "conversation", "tool", "external", "untrusted")
"""Where a memory came from. ``document`` is an ingested chunk; the others are written through ``Memory.add``.
``untrusted`` marks text from a source nobody vouches for (a web page, an e-mail); what derives from it stays
untrusted (see :mod:`hopmem.memory.trust.model`)."""


@dataclass(frozen=True)
class MemoryInput:
    """A memory to write (validated by :func:`hopmem.memory.validation.memory_input`)."""

    content: str
    title: str = ""
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    agent_id: str | None = None
    source_class: str = "user"
    importance: float = 0.5
    source: str | None = None
    derived_from: tuple[int, ...] = ()
    parent_trust: float | None = None
    on_behalf: bool = False
    """The user's own handle wrote it, labelled with ``agent_id`` (an import on the agent's behalf): the text is the
    agent's for the gate and for memory trust, but the write is the user's (provenance ``"via": "user"``)."""


@dataclass
class AddResult:
    """What writing one memory did: ``added``, or ``duplicate`` (the same content was stored already, under ``id``).

    ``quarantined`` says the memory is held for review (see :mod:`hopmem.memory.trust.gate`): stored, but invisible
    to every read until it is approved.
    """

    id: int
    status: str
    quarantined: bool = False


@dataclass(frozen=True)
class SearchFilter:
    """Restrictions every search mode applies inside its query, on top of the tenant.

    ``tags`` match when a memory has any of them; ``since``/``until`` bound ``created_at`` (Unix seconds,
    inclusive).
    """

    agent_id: str | None = None
    tags: tuple[str, ...] = ()
    source_classes: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None

    @property
    def empty(self) -> bool:
        return (
            self.agent_id is None
            and not self.tags
            and not self.source_classes
            and self.since is None
            and self.until is None
        )


@dataclass
class EraseReport:
    """What an erase removed, counted per place; ``files_scrubbed`` says the SQLite files were checkpointed."""

    memories: int = 0
    documents: int = 0
    vectors: int = 0
    feedback: int = 0
    threads: int = 0
    files_scrubbed: bool = False
    ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
