"""LlamaIndex over hopmem: a retriever (hopmem's search) and a query engine (hopmem's agent).

``HopmemRetriever`` is a plain LlamaIndex ``BaseRetriever``: it returns hopmem's ranked passages as
``NodeWithScore`` (node id = the memory id, hopmem's order and fused score, trust and source in the metadata), so it
fits wherever LlamaIndex takes a retriever, ``RetrieverQueryEngine`` with the user's own LLM included.

``HopmemQueryEngine`` answers with :class:`hopmem.Agent`, not with a LlamaIndex synthesizer over the retriever. Why:
the agent is what hopmem adds over a vector store (question splitting, multi-hop retrieval, fusion, reranking,
citations checked against the evidence, the answer remembered with provenance and trust), it runs offline on the
configured backend (LlamaIndex's default LLM is OpenAI's), and its numbered evidence maps one to one onto
``source_nodes``. A user who wants LlamaIndex's own synthesis passes ``HopmemRetriever`` to ``RetrieverQueryEngine``.

Example::

    from hopmem.integrations.llama_index import HopmemQueryEngine, HopmemRetriever

    nodes = HopmemRetriever(memory, k=3).retrieve("What causes the tides?")
    response = HopmemQueryEngine(hopmem.Agent(memory)).query("What causes the tides?")
    print(response, [n.node.node_id for n in response.source_nodes])
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from hopmem.agent_api import Agent
from hopmem.answer import Answer
from hopmem.integrations.base import memory_lock, missing_framework, record_metadata, result_metadata
from hopmem.memory.records import SearchResult
from hopmem.memory_api import Memory

try:
    from llama_index.core.base.base_query_engine import BaseQueryEngine
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.base.response.schema import Response
    from llama_index.core.callbacks.base import CallbackManager
    from llama_index.core.prompts.mixin import PromptMixinType
    from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode
except ImportError as exc:  # pragma: no cover - llama-index-core is a core dependency
    raise missing_framework("llama-index-core", "llama_index.core") from exc

__all__ = ["HopmemQueryEngine", "HopmemRetriever", "answer_response", "memory_ids", "result_node"]

_LLM_HIDDEN = (
    "hopmem_id",
    "tags",
    "document_id",
    "chunk_index",
    "external_id",
    "created_at",
    "score",
    "ranks",
    "n",
    "cited",
)
"""Metadata LlamaIndex leaves out of the text it gives an LLM (``MetadataMode.LLM``): bookkeeping, not evidence.
Title, source, writer and trust stay, so a synthesizer's prompt says where each passage came from."""


def _node(metadata: dict[str, Any], text: str) -> TextNode:
    """A ``TextNode`` for one memory: its id as the node id, its document (source file) as the SOURCE relation."""
    relationships = {}
    if metadata.get("source"):
        relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=str(metadata["source"]))
    return TextNode(
        id_=str(metadata["hopmem_id"]),
        text=text,
        metadata=metadata,
        relationships=relationships,
        excluded_llm_metadata_keys=[k for k in _LLM_HIDDEN if k in metadata],
        excluded_embed_metadata_keys=list(metadata),
    )


def result_node(result: SearchResult) -> NodeWithScore:
    """One search result as LlamaIndex's ``NodeWithScore`` (score = hopmem's fused score)."""
    return NodeWithScore(node=_node(result_metadata(result), result.record.content), score=float(result.score))


class HopmemRetriever(BaseRetriever):
    """A LlamaIndex retriever over :meth:`hopmem.Memory.search`: hopmem's passages, in hopmem's order.

    Args:
        memory: the memory to search (its tenant and trust weighting apply; quarantined memories never appear).
        k: passages per query (1 to 1000).
        mode: ``hybrid`` (default), ``lexical`` or ``dense``.
        filters: passed to :meth:`hopmem.Memory.search` with every query: ``agent``, ``tags``, ``source_class``,
            ``since``, ``until``.
        callback_manager: LlamaIndex's callbacks (default: none).
    """

    def __init__(
        self,
        memory: Memory,
        *,
        k: int = 5,
        mode: str = "hybrid",
        callback_manager: CallbackManager | None = None,
        **filters: Any,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self.memory = memory
        self.k = k
        self.mode = mode
        self.filters = filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        with memory_lock(self.memory):
            results = self.memory.search(query_bundle.query_str, k=self.k, mode=self.mode, **self.filters)
        return [result_node(r) for r in results]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        """The search in a worker thread, so an event loop (a notebook, a server) is not blocked by it."""
        return await asyncio.to_thread(self._retrieve, query_bundle)


def answer_response(answer: Answer, memory: Memory) -> Response:
    """An :class:`hopmem.Answer` as LlamaIndex's ``Response``.

    ``source_nodes`` are the numbered passages the answer was given, in their order (``[1]`` first), each with its
    score, its memory's metadata (trust, source, writer) and ``n`` and ``cited`` (whether the answer cites it);
    ``metadata`` holds ``cited`` (the numbers the answer cites), ``trace`` and ``thread_id``.
    """
    ids = [int(c["id"]) for c in answer.citations]
    with memory_lock(memory):
        records = {r.id: r for r in memory.get_many(ids)} if ids else {}
        trusts = memory.memory_trust(list(records)) if records else {}
    nodes = []
    for citation in answer.citations:
        mid = int(citation["id"])
        record = records.get(mid)
        if record is not None:
            metadata = record_metadata(record, trust=trusts.get(mid))
        else:  # erased since the answer was made: what the citation itself says
            metadata = {"hopmem_id": mid, "title": citation.get("title") or "", "trust": None}
        metadata |= {"n": int(citation["n"]), "cited": bool(citation.get("cited"))}
        nodes.append(NodeWithScore(node=_node(metadata, str(citation.get("text", ""))), score=float(citation["score"])))
    cited = [int(c["n"]) for c in answer.citations if c.get("cited")]
    return Response(
        response=answer.answer,
        source_nodes=nodes,
        metadata={"cited": cited, "trace": answer.trace, "thread_id": answer.thread_id},
    )


class HopmemQueryEngine(BaseQueryEngine):
    """A LlamaIndex query engine whose answers are :meth:`hopmem.Agent.ask`'s, with the evidence as source nodes.

    The agent runs its whole graph (plan, retrieve, hop, fuse, rerank, answer, remember): with
    ``remember_answers`` on (the default) each answer is written back to the memory as the agent's, through the
    trust gate, as it is for :meth:`hopmem.Agent.ask`.

    Args:
        agent: the agent that answers (its memory, settings and LLM).
        k: passages :meth:`retrieve` returns (the answer uses the agent's own ``rerank_top_k``).
        callback_manager: LlamaIndex's callbacks (default: none).
    """

    def __init__(self, agent: Agent, *, k: int = 5, callback_manager: CallbackManager | None = None) -> None:
        super().__init__(callback_manager)
        self.agent = agent
        self._retriever = HopmemRetriever(agent.memory, k=k, callback_manager=callback_manager)

    @classmethod
    def from_memory(cls, memory: Memory, **agent_options: Any) -> HopmemQueryEngine:
        """An engine over a new :class:`hopmem.Agent` of ``memory`` (``agent_options``: ``settings``, ``llm``)."""
        return cls(Agent(memory, **agent_options))

    def _get_prompt_modules(self) -> PromptMixinType:
        return {}

    def _query(self, query_bundle: QueryBundle) -> Response:
        with memory_lock(self.agent.memory):
            answer = self.agent.ask(query_bundle.query_str)
        return answer_response(answer, self.agent.memory)

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        """The agent's run in a worker thread (like :meth:`hopmem.Agent.aask`), the event loop free meanwhile."""
        return await asyncio.to_thread(self._query, query_bundle)

    def retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        """The memory's passages for the query (hopmem's search, without the agent's planning and reranking)."""
        return self._retriever.retrieve(query_bundle)

    def close(self) -> None:
        """Close the agent (and its memory)."""
        self.agent.close()


def memory_ids(nodes: Sequence[NodeWithScore]) -> list[int]:
    """The hopmem memory ids of ``nodes``, in their order."""
    return [int(n.node.metadata["hopmem_id"]) for n in nodes]
