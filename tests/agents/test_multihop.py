"""The hop tree: pruning rules, hop structure, and the retriever over a real memory store."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from hopmem.agents.multihop import MatrixSearch, TreeHopRetriever, hop_tree
from hopmem.agents.treehop_model import TreeHopConfig, TreeHopModel
from hopmem.memory.errors import InputError


class _TowardsTarget:
    """A stand-in next-query model whose next query is always one chosen vector (to test the tree, not the model)."""

    def __init__(self, target: np.ndarray) -> None:
        self.target = target

    def next_queries(self, q: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.repeat(self.target[None, :], len(c), axis=0)


def _corpus(n: int = 60, dim: int = 12, seed: int = 0) -> MatrixSearch:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return MatrixSearch(list(range(100, 100 + n)), v)


def test_without_a_model_it_is_direct_retrieval() -> None:
    corpus = _corpus()
    q = corpus.matrix[3]
    result = hop_tree(None, q, corpus.search, corpus.vectors, top_n=4, hops=3)
    assert result.ids == [i for i, _ in corpus.search(q[None, :], 4)[0]]
    assert result.ids[0] == 103 and all(n.hop == 1 for n in result.nodes)


def test_second_hop_finds_what_the_next_query_points_at_and_prunes() -> None:
    corpus = _corpus()
    q, target = corpus.matrix[0], corpus.matrix[40]
    model = _TowardsTarget(target)
    result = hop_tree(model, q, corpus.search, corpus.vectors, top_n=3, hops=2)  # type: ignore[arg-type]
    layers = result.per_hop()
    assert [len(layer) for layer in layers] == [3, 3]
    assert 140 in [n.memory_id for n in layers[1]]
    assert len(set(result.ids)) == len(result.ids)  # redundancy pruning: nothing retrieved twice
    assert not set(n.memory_id for n in layers[1]) & set(n.memory_id for n in layers[0])
    assert all(n.parent in {m.memory_id for m in layers[0]} for n in layers[1])
    # Every branch asked for the same vector, so the layer keeps the best 3 distinct new passages, not 9.
    expected = [i for i, _ in corpus.search(target[None, :], 10)[0] if i not in {n.memory_id for n in layers[0]}][:3]
    assert [n.memory_id for n in layers[1]] == expected


def test_layer_top_k_and_hops_bound_the_tree() -> None:
    corpus = _corpus(80)
    model = TreeHopModel(TreeHopConfig(dim=12, attn_size=4, mlp_size=4))
    model.eval()
    result = hop_tree(model, corpus.matrix[5], corpus.search, corpus.vectors, top_n=4, hops=3, layer_top_k=2)
    sizes = [len(layer) for layer in result.per_hop()]
    assert sizes == [4, 2, 2]
    assert len(set(result.ids)) == 8
    with pytest.raises(InputError):
        hop_tree(model, corpus.matrix[5], corpus.search, corpus.vectors, top_n=0)


def test_retriever_over_a_memory_store_stays_in_its_tenant(tmp_path, embedder) -> None:  # type: ignore[no-untyped-def]
    from hopmem.memory.records import MemoryInput
    from hopmem.memory.store import MemoryStore
    from hopmem.memory.vectors.exact import ExactVectorIndex

    texts_a = [
        "Kiss and Tell is a 1945 film starring Shirley Temple as Corliss Archer.",
        "Shirley Temple later served as Chief of Protocol of the United States.",
        "The Eiffel Tower is in Paris.",
    ]
    texts_b = ["Shirley Temple was a diplomat (tenant b's secret note).", "Corliss Archer appears in radio plays."]
    store = MemoryStore(tmp_path / "m.sqlite")
    try:
        for tenant, texts in (("a", texts_a), ("b", texts_b)):
            vectors = embedder.embed(texts)
            store.add_memories(
                tenant,
                [MemoryInput(content=t) for t in texts],
                vectors=vectors,
                embedder=(embedder.name, embedder.dim),
            )
        index = ExactVectorIndex(store)
        model = TreeHopModel(TreeHopConfig(dim=embedder.dim, attn_size=8, mlp_size=8))
        model.eval()
        retriever = TreeHopRetriever(store, index, model, top_n=2, hops=2)
        query = embedder.embed(["What position did the actress who played Corliss Archer hold?"])[0]
        result = retriever.retrieve("a", query)
        contents = {r.content for r in store.get("a", result.ids)}
        assert len(result.ids) == 3 and len(contents) == 3  # both layers, only tenant a's rows
        ids_b = {r.id for r in store.export("b")}
        assert not ids_b & set(result.ids)
        assert result.to_dict()["hops"][0][0]["hop"] == 1
    finally:
        store.close()


def _ids(values: Sequence[int]) -> list[int]:
    return list(values)
