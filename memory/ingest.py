"""Turn files, folders and BEIR corpora into stored chunks with embeddings.

Each document is read, chunked and embedded before anything is written; documents are then written in batches, each
batch in one transaction. A file that fails leaves the store exactly as it was for that file.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.memory.chunking import chunk_text
from hopmem.memory.datasets.beir import is_corpus_file, iter_corpus
from hopmem.memory.errors import HopmemError, IngestError
from hopmem.memory.loaders import is_supported, load_file
from hopmem.memory.records import DocumentInput
from hopmem.memory.store import MemoryStore, require_tenant

if TYPE_CHECKING:
    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What an ingestion did. ``errors`` are inputs that were asked for but could not be stored."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    chunks: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "chunks": self.chunks,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "errors": [{"path": p, "error": e} for p, e in self.errors],
        }


@dataclass
class _WorkItem:
    path: Path
    corpus: bool


class Ingestor:
    """Reads, chunks, embeds and stores.

    Args:
        store: where chunks go.
        embedder: makes the chunk vectors; None stores text only (lexical search).
        chunk_size: chunk size in tokens.
        chunk_overlap: overlap in tokens.
        max_file_bytes: larger files are refused.
        max_content_chars: documents with more text than this are refused.
        batch_chunks: chunks embedded and written together.
    """

    def __init__(
        self,
        store: MemoryStore,
        embedder: Embedder | None,
        *,
        chunk_size: int = 256,
        chunk_overlap: int = 32,
        max_file_bytes: int = 50_000_000,
        max_content_chars: int = 200_000,
        batch_chunks: int = 256,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.max_file_bytes = max_file_bytes
        self.max_content_chars = max_content_chars
        self.batch_chunks = batch_chunks

    # ---- planning -------------------------------------------------------------------------------------------

    def plan(self, paths: Sequence[Path | str], report: IngestReport) -> list[_WorkItem]:
        """Expand folders; record missing paths as errors and unsupported folder members as skipped."""
        items: list[_WorkItem] = []
        for raw in paths:
            path = Path(raw).expanduser()
            if not path.exists():
                report.errors.append((str(path), f"{path} does not exist; check the path."))
            elif path.is_dir():
                for member in sorted(p for p in path.rglob("*") if p.is_file()):
                    if any(part.startswith(".") for part in member.relative_to(path).parts):
                        continue
                    if is_corpus_file(member):
                        items.append(_WorkItem(member, corpus=True))
                    elif is_supported(member):
                        items.append(_WorkItem(member, corpus=False))
                    else:
                        report.skipped.append((str(member), f"unsupported extension {member.suffix or '(none)'}"))
            else:
                items.append(_WorkItem(path, corpus=is_corpus_file(path)))
        return items

    # ---- running --------------------------------------------------------------------------------------------

    def ingest(self, tenant: str, paths: Sequence[Path | str], *, progress: bool = True) -> IngestReport:
        """Ingest files, folders and BEIR corpus files for ``tenant``."""
        require_tenant(tenant)
        report = IngestReport()
        items = self.plan(paths, report)
        docs = self._documents(tenant, items, report)
        total = sum(self._count(item) for item in items)
        self._write(tenant, docs, report, total=total, progress=progress)
        return report

    def ingest_documents(
        self,
        tenant: str,
        documents: Iterable[DocumentInput],
        *,
        total: int | None = None,
        progress: bool = True,
    ) -> IngestReport:
        """Store already-chunked documents (used by evaluation and the SDK)."""
        require_tenant(tenant)
        report = IngestReport()
        self._write(tenant, iter(documents), report, total=total, progress=progress)
        return report

    def _count(self, item: _WorkItem) -> int:
        if not item.corpus:
            return 1
        with item.path.open(encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())

    def _documents(self, tenant: str, items: list[_WorkItem], report: IngestReport) -> Iterator[DocumentInput]:
        for item in items:
            try:
                if item.corpus:
                    for doc in iter_corpus(item.path):
                        body = doc.text if doc.text.strip() else doc.title
                        if not body.strip():
                            # Real corpora carry a few empty records (Cranfield's 471); they are skipped, not fatal.
                            report.skipped.append((f"{item.path}#{doc.id}", "empty record"))
                            continue
                        chunks = self._chunks(body, f"{item.path}#{doc.id}")
                        yield DocumentInput(
                            source=f"{item.path.resolve()}#{doc.id}",
                            title=doc.title,
                            content_hash=self._hash(doc.title + "\n" + doc.text),
                            chunks=chunks,
                            external_id=doc.id,
                        )
                else:
                    loaded = load_file(item.path, max_bytes=self.max_file_bytes)
                    yield DocumentInput(
                        source=str(item.path.resolve()),
                        title=loaded.title,
                        content_hash=self._hash(loaded.text),
                        chunks=self._chunks(loaded.text, str(item.path)),
                    )
            except HopmemError as exc:
                report.errors.append((str(item.path), str(exc)))

    def _chunks(self, text: str, where: str) -> list[str]:
        if len(text) > self.max_content_chars:
            raise IngestError(
                f"{where} has {len(text):,} characters, above the limit of {self.max_content_chars:,} "
                "(HOPMEM_MAX_CONTENT_CHARS)."
            )
        chunks = chunk_text(text, chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap)
        if not chunks:
            raise IngestError(f"{where} contains no text; nothing was stored.")
        return chunks

    def _hash(self, text: str) -> str:
        model = self.embedder.name if self.embedder is not None else "-"
        key = f"{self.chunk_size}:{self.chunk_overlap}:{model}\n{text}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()

    def _write(
        self,
        tenant: str,
        docs: Iterator[DocumentInput],
        report: IngestReport,
        *,
        total: int | None,
        progress: bool,
    ) -> None:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="doc", desc="ingest", disable=not progress, leave=False)
        pending: list[DocumentInput] = []
        pending_chunks = 0
        try:
            for doc in docs:
                bar.update(1)
                if self.store.document_hash(tenant, doc.source) == doc.content_hash:
                    report.unchanged += 1
                    continue
                pending.append(doc)
                pending_chunks += len(doc.chunks)
                if pending_chunks >= self.batch_chunks:
                    self._flush(tenant, pending, report)
                    pending, pending_chunks = [], 0
            if pending:
                self._flush(tenant, pending, report)
        finally:
            bar.close()

    def _flush(self, tenant: str, docs: list[DocumentInput], report: IngestReport) -> None:
        per_doc: list[np.ndarray] | None = None
        model: tuple[str, int] | None = None
        if self.embedder is not None:
            texts = [_embedding_text(doc.title, chunk) for doc in docs for chunk in doc.chunks]
            vectors = self.embedder.embed(texts)
            per_doc, start = [], 0
            for doc in docs:
                per_doc.append(vectors[start : start + len(doc.chunks)])
                start += len(doc.chunks)
            model = (self.embedder.name, self.embedder.dim)
        for write in self.store.add_documents(tenant, docs, per_doc, embedder=model):
            if write.status == "added":
                report.added += 1
            elif write.status == "replaced":
                report.replaced += 1
            else:
                report.unchanged += 1
            report.chunks += write.n_chunks


def _embedding_text(title: str, chunk: str) -> str:
    """What the embedder sees: the title gives a chunk its context unless the chunk already starts with it."""
    if title and not chunk.startswith(title):
        return f"{title}\n{chunk}"
    return chunk
