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


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(
        "all-MiniLM-L6-v2", query_runtime="onnx", cache_dir=tmp_path_factory.mktemp("onnx-cache")
    )


@pytest.mark.parametrize("query", QUERIES, ids=["sentence", "one word", "too long", "unicode", "spaces"])
def test_onnx_query_runtime_matches_embed(onnx_embedder: SentenceTransformerEmbedder, query: str) -> None:
    single = onnx_embedder.embed_query(query)  # the first call exports the graph and checks it against PyTorch
    assert onnx_embedder._onnx is not None, "the ONNX query encoder was refused (see the log)"
    np.testing.assert_allclose(single, onnx_embedder.embed([query])[0], atol=1e-5)


def test_onnx_graph_is_cached_and_reused(onnx_embedder: SentenceTransformerEmbedder) -> None:
    onnx_embedder.embed_query("warm")
    cached = list(onnx_embedder._cache_dir.glob("*.onnx"))  # type: ignore[union-attr]
    assert len(cached) == 1 and cached[0].stat().st_size > 1_000_000
    again = SentenceTransformerEmbedder("all-MiniLM-L6-v2", query_runtime="onnx", cache_dir=onnx_embedder._cache_dir)
    before = cached[0].stat().st_mtime_ns
    np.testing.assert_allclose(again.embed_query("bees"), onnx_embedder.embed_query("bees"), atol=1e-6)
    assert cached[0].stat().st_mtime_ns == before  # not exported again


def test_a_broken_graph_falls_back_to_torch(tmp_path: object, caplog: pytest.LogCaptureFixture) -> None:
    from pathlib import Path

    cache = Path(str(tmp_path))
    first = SentenceTransformerEmbedder("all-MiniLM-L6-v2", query_runtime="onnx", cache_dir=cache)
    first.embed_query("x")
    for graph in cache.glob("*.onnx"):
        graph.write_bytes(b"not an onnx graph")
    broken = SentenceTransformerEmbedder("all-MiniLM-L6-v2", query_runtime="onnx", cache_dir=cache)
    vector = broken.embed_query("bees")
    assert broken._onnx is None and "PyTorch" in caplog.text
    np.testing.assert_allclose(vector, broken.embed(["bees"])[0], atol=1e-5)
