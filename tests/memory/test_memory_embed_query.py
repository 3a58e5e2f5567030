"""The single-query fast path gives the same vectors as the batched encoder, which the store's vectors come from."""

from __future__ import annotations

import numpy as np
import pytest

from hopmem.memory.embeddings import SentenceTransformerEmbedder

QUERIES = [
    "what is the effect of wing sweep on boundary layer transition",
    "bees",
    "word " * 400,  # longer than max_seq_length: both paths must truncate the same way
    "Ünïcödé façade, naïve café; 東京の天気",
    "   spaces   around   ",
]


@pytest.mark.parametrize("query", QUERIES, ids=["sentence", "one word", "too long", "unicode", "spaces"])
def test_embed_query_matches_embed(embedder: SentenceTransformerEmbedder, query: str) -> None:
    batched = embedder.embed([query])[0]
    single = embedder.embed_query(query)
    assert single.dtype == np.float32 and single.shape == (embedder.dim,)
    np.testing.assert_allclose(single, batched, atol=1e-5)
    assert abs(float(np.linalg.norm(single)) - 1.0) < 1e-5


def test_embed_query_ranks_like_embed(embedder: SentenceTransformerEmbedder) -> None:
    docs = embedder.embed(["Honeybees dance to show where flowers are.", "Tides follow the moon.", "Bread rises."])
    query = "how do bees tell each other where food is"
    assert int(np.argmax(docs @ embedder.embed_query(query))) == 0
