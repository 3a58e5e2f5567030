"""The LlamaIndex retriever and query engine, run by LlamaIndex itself over a real memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from llama_index.core.base.response.schema import Response
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeRelationship, NodeWithScore, QueryBundle

from hopmem import Agent, InputError, Memory
from hopmem.integrations.llama_index import HopmemQueryEngine, HopmemRetriever, memory_ids
from tests.sdk.integrations.conftest import settings_for

QUESTION = "What causes the tides?"


def test_retriever_returns_hopmem_passages_in_hopmem_order(memory: Memory) -> None:
    expected = memory.search(QUESTION, k=3)
    nodes = HopmemRetriever(memory, k=3).retrieve(QUESTION)
    assert all(isinstance(n, NodeWithScore) for n in nodes)
    assert memory_ids(nodes) == [r.id for r in expected]
    assert [n.node.node_id for n in nodes] == [str(r.id) for r in expected]
    assert [n.score for n in nodes] == pytest.approx([r.score for r in expected])
    top, result = nodes[0].node, expected[0]
    assert top.get_content() == result.record.content
    assert top.metadata["title"] == "What causes the tides"
    assert top.metadata["source"].endswith("tides.md")
    assert top.metadata["trust"] == pytest.approx(result.trust, abs=1e-4)
    assert top.metadata["ranks"] == result.ranks
    assert top.relationships[NodeRelationship.SOURCE].node_id == top.metadata["source"]
    # what LlamaIndex hands an LLM names the title, source and trust, not the bookkeeping
    for_llm = top.get_content(metadata_mode=MetadataMode.LLM)
    assert "title: What causes the tides" in for_llm and "trust: 1.0" in for_llm
    assert "ranks" not in for_llm and "hopmem_id" not in for_llm


def test_retriever_passes_mode_and_filters_to_search(memory: Memory) -> None:
    note = memory.add("The tide table for Fundy says high water at noon.", tags=["tides"])
    nodes = HopmemRetriever(memory, k=5, mode="lexical", tags=["tides"]).retrieve("tide table")
    assert memory_ids(nodes) == [note.id]
    with pytest.raises(InputError, match="mode"):
        HopmemRetriever(memory, mode="telepathy").retrieve(QUESTION)


def test_aretrieve_gives_the_sync_results_and_overlapping_calls_are_serialised(memory: Memory) -> None:
    retriever = HopmemRetriever(memory, k=3)
    sync = [memory_ids(retriever.retrieve(q)) for q in (QUESTION, "lighthouse flashes")]

    async def both() -> list[list[NodeWithScore]]:
        return list(await asyncio.gather(retriever.aretrieve(QUESTION), retriever.aretrieve("lighthouse flashes")))

    assert [memory_ids(nodes) for nodes in asyncio.run(both())] == sync


def test_query_engine_answers_with_the_agents_citations_as_source_nodes(memory: Memory) -> None:
    engine = HopmemQueryEngine(Agent(memory))
    before = memory.stats()["memories"]
    response = engine.query(QUESTION)
    assert isinstance(response, Response)
    assert "Moon" in str(response)
    nodes = response.source_nodes
    assert [n.node.metadata["n"] for n in nodes] == list(range(1, len(nodes) + 1))
    cited = [n for n in nodes if n.node.metadata["cited"]]
    assert response.metadata is not None and response.metadata["cited"] == [n.node.metadata["n"] for n in cited]
    assert cited and cited[0].node.metadata["title"] == "What causes the tides"
    for node in nodes:  # each source node is the memory it names
        assert node.node.get_content() == memory.get(int(node.node.node_id)).content
        assert node.node.metadata["trust"] is not None
    assert [s["step"] for s in response.metadata["trace"]][-1] == "remember"
    assert memory.stats()["memories"] == before + 1  # the agent remembered its answer, as Agent.ask does
    assert memory_ids(engine.retrieve(QueryBundle(QUESTION)))[0] == cited[0].node.metadata["hopmem_id"]


def test_query_engine_async_path(tmp_path: Path, sample_dir: Path) -> None:
    settings = settings_for(tmp_path, remember_answers=False)
    memory = Memory(settings)
    memory.ingest([sample_dir], progress=False)
    engine = HopmemQueryEngine.from_memory(memory)
    try:
        sync = engine.query(QUESTION)

        async def run() -> Response:
            result = await engine.aquery(QUESTION)
            assert isinstance(result, Response)
            return result

        answered = asyncio.run(run())
        assert str(answered) == str(sync)
        assert memory_ids(answered.source_nodes) == memory_ids(sync.source_nodes)
    finally:
        engine.close()


def test_retriever_composes_with_llamaindex_synthesis(memory: Memory) -> None:
    """``RetrieverQueryEngine`` with LlamaIndex's ``MockLLM``, standing for a user's own LLM (none runs offline here):
    LlamaIndex's synthesizer runs for real over hopmem's passages, which come back as the response's sources."""
    engine = RetrieverQueryEngine.from_args(HopmemRetriever(memory, k=2), llm=MockLLM(max_tokens=8))
    response = engine.query(QUESTION)
    assert memory_ids(response.source_nodes) == [r.id for r in memory.search(QUESTION, k=2)]
