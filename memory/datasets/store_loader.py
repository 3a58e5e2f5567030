"""A BEIR corpus indexed into a memory store once and cached, for training and evaluation runs.

Embedding a corpus is the slow part of every training or evaluation run (minutes on a CPU), and the result depends
only on the corpus file, the embedder and the chunking. The store is built in a temporary file and renamed into the
cache, so a crashed or concurrent build never leaves a half-built store behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hopmem.memory.errors import InputError
from hopmem.memory.ingest import Ingestor
from hopmem.memory.store import MemoryStore

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)

BEIR_TENANT = "beir"


@dataclass
class CorpusVectors:
    """Every stored chunk vector of an indexed corpus, with the document each chunk came from."""

    memory_ids: NDArray[np.int64]
    doc_ids: list[str]
    matrix: NDArray[np.float32]

    def first_chunk_rows(self) -> dict[str, int]:
        """Document id -> row of its first chunk (the document's vector in hop chains)."""
        rows: dict[str, int] = {}
        for row, doc in enumerate(self.doc_ids):
            rows.setdefault(doc, row)
        return rows


def corpus_key(corpus: Path, embedder: str, dim: int, chunk_size: int, chunk_overlap: int) -> str:
    """What the cached store depends on: the corpus bytes, the embedder and the chunking."""
    digest = hashlib.sha256()
    with corpus.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(f"|{embedder}|{dim}|{chunk_size}|{chunk_overlap}".encode())
    return digest.hexdigest()[:24]


def open_indexed_corpus(
    root: Path,
    embedder: Embedder,
    *,
    cache_dir: Path,
    chunk_size: int,
    chunk_overlap: int,
    title_weight: float = 2.0,
    content_weight: float = 1.0,
    progress: bool = True,
) -> MemoryStore:
    """The store of ``root/corpus.jsonl`` under tenant :data:`BEIR_TENANT`, built on first use and then reused.

    Raises:
        InputError: when the folder has no corpus or indexing it fails.
    """
    corpus = Path(root) / "corpus.jsonl"
    if not corpus.is_file():
        raise InputError(f"{root} has no corpus.jsonl; give a folder in BEIR layout.")
    key = corpus_key(corpus, embedder.name, embedder.dim, chunk_size, chunk_overlap)
    target = Path(cache_dir) / "beir" / f"{Path(root).resolve().name}-{key}.sqlite"

    def _open() -> MemoryStore:
        return MemoryStore(target, title_weight=title_weight, content_weight=content_weight)

    if target.is_file():
        log.info("reusing the indexed corpus %s", target)
        return _open()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=target.stem + ".", suffix=".building", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        store = MemoryStore(tmp, title_weight=title_weight, content_weight=content_weight)
        try:
            ingestor = Ingestor(
                store, embedder, chunk_size=chunk_size, chunk_overlap=chunk_overlap, max_content_chars=10_000_000
            )
            report = ingestor.ingest(BEIR_TENANT, [corpus], progress=progress)
            if report.errors:
                raise InputError(f"Indexing {corpus} failed: {report.errors[0][1]}")
        finally:
            store.close()
        for suffix in ("-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
    return _open()


def corpus_vectors(store: MemoryStore, tenant: str = BEIR_TENANT) -> CorpusVectors:
    """All chunk vectors of ``tenant`` with their documents' external ids, in memory-id order."""
    ids, matrix = store.vectors_after(tenant, 0)
    external: dict[int, str] = {}
    for start in range(0, len(ids), 900):
        for record in store.get(tenant, [int(i) for i in ids[start : start + 900]]):
            external[record.id] = record.external_id or str(record.id)
    return CorpusVectors(ids, [external[int(i)] for i in ids], matrix)
