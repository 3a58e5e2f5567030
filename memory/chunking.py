"""Split text into overlapping chunks with llama-index's sentence-aware node parser (imported lazily)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=8)
def _splitter(chunk_size: int, chunk_overlap: int) -> Any:
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(chunk_size=chunk_size, chunk_overlap=min(chunk_overlap, chunk_size // 2))


def chunk_text(text: str, *, chunk_size: int, chunk_overlap: int) -> list[str]:
    """The chunks of ``text``: sentence-aligned, about ``chunk_size`` tokens, ``chunk_overlap`` tokens shared."""
    text = text.strip()
    if not text:
        return []
    chunks = _splitter(chunk_size, chunk_overlap).split_text(text)
    return [c.strip() for c in chunks if c.strip()]
