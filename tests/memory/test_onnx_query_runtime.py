"""The exported query graph is fused (fewer, larger kernels) and exact; the int8 runtime is close and ranks alike.

test_memory_embed_query.py checks that the float graph gives the batched encoder's vectors; this file checks what
the graph is made of and the int8 variant (``embed_query_runtime = "onnx-int8"``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hopmem.memory.embeddings import SentenceTransformerEmbedder
from hopmem.memory.onnx_query import MIN_INT8_COSINE

QUERIES = [
    "what is the effect of wing sweep on boundary layer transition",
    "Which magazine was started first, Arthur's Magazine or First for Women?",
    "bees",
    "Ünïcödé façade, naïve café; 東京の天気",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def test_the_float_graph_is_fused_and_exact(cache: Path) -> None:
    onnx = pytest.importorskip("onnx")
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2", query_runtime="onnx", cache_dir=cache)
    for query in QUERIES:
        np.testing.assert_allclose(embedder.embed_query(query), embedder.embed([query])[0], atol=1e-5)
    assert embedder._onnx is not None
    (graph,) = [p for p in cache.glob("*.onnx") if not p.name.endswith(".int8.onnx")]
    ops = [node.op_type for node in onnx.load(str(graph)).graph.node]
    assert ops.count("Attention") == 6  # one fused attention per MiniLM-L6 layer
    assert len(ops) < 100  # the unfused export has about 670 nodes


def test_queries_skip_the_hugging_face_tokenizer_and_get_the_same_ids(cache: Path) -> None:
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2", query_runtime="onnx", cache_dir=cache)
    embedder.embed_query("warm-up")
    encoder = embedder._onnx
    assert encoder is not None and encoder._rust is not None, "the direct tokenizer was refused (see the log)"
    tokenizer = embedder._model[0].tokenizer
    longest = int(embedder._model.max_seq_length)
    for query in [*QUERIES, "Overlong question " * 400, "  spaces\tand\nnewlines  ", "x"]:
        want = tokenizer([query], truncation=True, max_length=longest)["input_ids"][0]
        assert encoder._token_ids(query)[0].tolist() == list(want)
        np.testing.assert_allclose(embedder.embed_query(query), embedder.embed([query])[0], atol=1e-5)
    assert len(encoder._token_ids("Overlong question " * 400)[0]) == longest


def test_the_int8_runtime_is_close_and_ranks_alike(cache: Path) -> None:
    float_path = SentenceTransformerEmbedder("all-MiniLM-L6-v2", query_runtime="onnx", cache_dir=cache)
    int8 = SentenceTransformerEmbedder("all-MiniLM-L6-v2", query_runtime="onnx-int8", cache_dir=cache)
    docs = float_path.embed(
        [
            "Honeybees dance to show where flowers are.",
            "Tides follow the moon.",
            "Bread rises when yeast ferments.",
            "Swept wings delay the onset of compressibility drag.",
        ]
    )
    for query in QUERIES:
        quantized, exact = int8.embed_query(query), float_path.embed([query])[0]
        assert int8._onnx is not None, "the int8 query encoder was refused (see the log)"
        assert abs(float(np.linalg.norm(quantized)) - 1.0) < 1e-5
        assert float(quantized @ exact) >= MIN_INT8_COSINE
        assert not np.allclose(quantized, exact, atol=1e-5)  # it is a different graph, not the float one
    for query, best in (("how do bees tell each other where food is", 0), ("wing sweep and drag", 3)):
        assert int(np.argmax(docs @ int8.embed_query(query))) == best
    assert len(list(cache.glob("*.int8.onnx"))) == 1
