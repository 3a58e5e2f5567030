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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResult:
    """A memory found by a search, with the fused score and each retriever's rank (1-based) where it appeared."""

    record: MemoryRecord
    score: float
    ranks: dict[str, int] = field(default_factory=dict)

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
