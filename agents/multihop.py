"""Multi-hop retrieval in embedding space: the TreeHop hop tree.

Hop 1 retrieves ``top_n`` passages for the question's embedding. Every later hop turns each passage of the previous
layer into a next query embedding with the TreeHop model and retrieves ``top_n`` passages for each, then prunes the
tree by TreeHop's rules: a passage already retrieved in an earlier hop (or earlier in this layer) is dropped
(redundancy pruning), and only the ``layer_top_k`` best new passages of the layer, by similarity to the query that
found them, are kept (layer-wise top-K pruning). The search stops after ``hops`` layers or when a layer finds nothing
new. No LLM runs: one matrix product and a few nearest-neighbour searches per hop.

The tree search works on two callables (search and passage vectors), so that it runs over the memory's vector index
in the agent and over a plain matrix in training and evaluation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hopmem.memory.errors import InputError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hopmem.agents.treehop_model import TreeHopModel
    from hopmem.memory.embeddings import Embedder
    from hopmem.memory.store import MemoryStore
    from hopmem.memory.vectors.base import VectorIndex

log = logging.getLogger(__name__)

SearchFn = Callable[["NDArray[np.float32]", int], list[list[tuple[int, float]]]]
"""Nearest neighbours for each row of a query matrix: ``[(id, cosine), ...]`` best first."""
VectorsFn = Callable[[Sequence[int]], "NDArray[np.float32]"]
"""The stored unit vectors of these passage ids, in that order."""


@dataclass
class HopNode:
    """One retrieved passage in the tree: which hop found it, how well, and from which passage's next query."""

    memory_id: int
    hop: int
    score: float
    parent: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.memory_id, "hop": self.hop, "score": round(self.score, 4), "parent": self.parent}


@dataclass
class HopResult:
    """The passages of every hop, in retrieval order, and timing."""

    nodes: list[HopNode] = field(default_factory=list)
    ms: float = 0.0

    @property
    def ids(self) -> list[int]:
        """Every retrieved passage once, hop by hop, best first within a hop."""
        return [n.memory_id for n in self.nodes]

    def per_hop(self) -> list[list[HopNode]]:
        hops = max((n.hop for n in self.nodes), default=0)
        return [[n for n in self.nodes if n.hop == h] for h in range(1, hops + 1)]

    def to_dict(self) -> dict[str, Any]:
        return {"hops": [[n.to_dict() for n in layer] for layer in self.per_hop()], "ms": round(self.ms, 3)}


def hop_tree(
    model: TreeHopModel | None,
    query_vector: NDArray[np.float32],
    search: SearchFn,
    vectors: VectorsFn,
    *,
    top_n: int = 5,
    hops: int = 2,
    layer_top_k: int | None = None,
) -> HopResult:
    """Run the TreeHop tree search from one query embedding.

    Args:
        model: the next-query model; None gives plain retrieval of ``top_n`` (hop 1 only).
        query_vector: the question's unit embedding.
        search: nearest-neighbour search (see :data:`SearchFn`).
        vectors: stored vectors of passages (see :data:`VectorsFn`).
        top_n: passages retrieved per query embedding.
        hops: layers of the tree (1 = direct retrieval).
        layer_top_k: new passages kept per layer after hop 1 (default ``top_n``).

    Raises:
        InputError: on a non-positive ``top_n``, ``hops`` or ``layer_top_k``.
    """
    if top_n < 1 or hops < 1 or (layer_top_k is not None and layer_top_k < 1):
        raise InputError("top_n, hops and layer_top_k must be at least 1.")
    keep = layer_top_k or top_n
    started = time.perf_counter()
    query = np.asarray(query_vector, dtype=np.float32).reshape(1, -1)
    first = search(query, top_n)[0]
    result = HopResult([HopNode(i, 1, s, None) for i, s in first])
    seen = {i for i, _ in first}
    frontier_ids = [i for i, _ in first]
    frontier_queries = np.repeat(query, len(frontier_ids), axis=0)
    for hop in range(2, hops + 1):
        if model is None or not frontier_ids:
            break
        passages = vectors(frontier_ids)
        next_queries = model.next_queries(frontier_queries, passages)
        # Ask for enough that top_n unseen passages remain after redundancy pruning.
        found = search(next_queries, top_n + len(seen))
        candidates: dict[int, tuple[float, int, int]] = {}
        for row, hits in enumerate(found):
            fresh = [(i, s) for i, s in hits if i not in seen][:top_n]
            for memory_id, score in fresh:
                best = candidates.get(memory_id)
                if best is None or score > best[0]:
                    candidates[memory_id] = (score, row, frontier_ids[row])
        kept = sorted(candidates.items(), key=lambda item: (-item[1][0], item[0]))[:keep]
        if not kept:
            break
        result.nodes.extend(HopNode(i, hop, score, parent) for i, (score, _, parent) in kept)
        seen.update(i for i, _ in kept)
        frontier_ids = [i for i, _ in kept]
        frontier_queries = next_queries[[row for _, (_, row, _) in kept]]
    result.ms = (time.perf_counter() - started) * 1000
    return result


class MatrixSearch:
    """Exact search over an in-memory matrix of unit vectors (training and evaluation)."""

    def __init__(self, ids: Sequence[int] | NDArray[np.int64], matrix: NDArray[np.float32]) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._row = {int(i): r for r, i in enumerate(self.ids)}

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[tuple[int, float]]]:
        scores = np.atleast_2d(queries) @ self.matrix.T
        k = min(k, scores.shape[1])
        out = []
        for row in scores:
            top = np.argpartition(-row, k - 1)[:k]
            top = top[np.lexsort((self.ids[top], -row[top]))]
            out.append([(int(self.ids[t]), float(row[t])) for t in top])
        return out

    def vectors(self, ids: Sequence[int]) -> NDArray[np.float32]:
        return self.matrix[[self._row[int(i)] for i in ids]]


class MemoryHopSearch:
    """The tree search's callables over a memory store and its vector index, for one tenant."""

    def __init__(self, store: MemoryStore, index: VectorIndex, tenant: str) -> None:
        self.store, self.index, self.tenant = store, index, tenant

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[tuple[int, float]]]:
        return [[(h.memory_id, h.score) for h in self.index.search(self.tenant, q, k)] for q in np.atleast_2d(queries)]

    def vectors(self, ids: Sequence[int]) -> NDArray[np.float32]:
        found_ids, found = self.store.vectors_by_ids(self.tenant, list(ids))
        row = {int(i): r for r, i in enumerate(found_ids)}
        missing = [i for i in ids if int(i) not in row]
        if missing:
            raise InputError(f"Memories {missing[:5]} have no stored vector; run `hopmem memory reindex`.")
        return found[[row[int(i)] for i in ids]]


class TreeHopRetriever:
    """TreeHop multi-hop retrieval over a memory (the agent's hop step).

    Args:
        store: the memory store (passage vectors come from SQLite, the source of truth).
        index: its vector index.
        model: the TreeHop model (see :func:`hopmem.agents.treehop_model.load_treehop`).
        top_n: passages per query embedding.
        hops: layers of the tree.
        layer_top_k: new passages kept per layer (default ``top_n``).
        choice: which model runs and why (trained or untrained, see
            :func:`hopmem.agents.treehop_model.load_selected_treehop`); shown in the hop step's trace.
    """

    def __init__(
        self,
        store: MemoryStore,
        index: VectorIndex,
        model: TreeHopModel,
        *,
        top_n: int = 5,
        hops: int = 2,
        layer_top_k: int | None = None,
        choice: str = "",
    ) -> None:
        self.store, self.index, self.model = store, index, model
        self.top_n, self.hops, self.layer_top_k = top_n, hops, layer_top_k
        self.choice = choice

    def retrieve(self, tenant: str, query_vector: NDArray[np.float32], *, hops: int | None = None) -> HopResult:
        """The hop tree for one query embedding of ``tenant``."""
        backend = MemoryHopSearch(self.store, self.index, tenant)
        return hop_tree(
            self.model,
            query_vector,
            backend.search,
            backend.vectors,
            top_n=self.top_n,
            hops=hops or self.hops,
            layer_top_k=self.layer_top_k,
        )


def configured_hopper(
    store: MemoryStore, index: VectorIndex, embedder: Embedder, *, model_dir: str, top_n: int, hops: int
) -> TreeHopRetriever | None:
    """The hop step's TreeHop as the agent runs it: the model at ``model_dir`` ("" = the packaged one), trained or
    untrained by the measured rule on its card (:func:`hopmem.agents.treehop_model.load_selected_treehop`), never by
    default. None when ``hops < 2``, or, with a warning, when no TreeHop model is installed.

    Raises:
        ConfigError: as :func:`hopmem.agents.treehop_model.load_treehop` on a folder that holds no usable model.
    """
    if hops < 2:
        return None
    from hopmem.agents.treehop_model import load_selected_treehop, packaged_model_dir

    if not model_dir and not (packaged_model_dir() / "config.json").exists():
        log.warning("No TreeHop model is installed; the hop step passes retrieval through.")
        return None
    model, note = load_selected_treehop(model_dir or None, embedder=embedder.name, dim=embedder.dim)
    log.info("TreeHop hop step: %s", note)
    return TreeHopRetriever(store, index, model, top_n=top_n, hops=hops, choice=note)
