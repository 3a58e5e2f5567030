"""The LangChain retriever and tools, run by LangChain and by a LangGraph graph over a real memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import ValidationError

from hopmem import Memory
from hopmem.integrations.langchain import HopmemRetriever, remember_tool, search_tool
from tests.sdk.integrations.conftest import settings_for

QUESTION = "How do honeybees share directions?"


def test_retriever_invoke_returns_documents_in_hopmem_order(memory: Memory) -> None:
    retriever = HopmemRetriever(memory=memory, k=3)
    expected = memory.search(QUESTION, k=3)
    docs = retriever.invoke(QUESTION)
    assert all(isinstance(d, Document) for d in docs)
    assert [d.id for d in docs] == [str(r.id) for r in expected]
    assert [d.metadata["hopmem_id"] for d in docs] == [r.id for r in expected]
    assert docs[0].page_content == expected[0].record.content
    assert docs[0].metadata["source"].endswith("honeybees.md")
    assert docs[0].metadata["score"] == pytest.approx(expected[0].score, abs=1e-6)
    assert docs[0].metadata["trust"] == pytest.approx(expected[0].trust, abs=1e-4)
    assert [d.id for d in asyncio.run(retriever.ainvoke(QUESTION))] == [d.id for d in docs]
    only_user = HopmemRetriever(memory=memory, filters={"source_class": "user"})
    assert only_user.invoke(QUESTION) == []


def test_search_tool_returns_passages_with_ids_trust_and_sources(memory: Memory) -> None:
    tool = search_tool(memory)
    expected = memory.search(QUESTION, k=2)
    text = tool.invoke({"query": QUESTION, "k": 2})
    assert isinstance(text, str)
    first, second = text.split("\n\n[id ")[:2]
    assert first.startswith(f"[id {expected[0].id}; title 'How honeybees share directions'; trust 1.00; from ")
    assert "honeybees.md]" in first and "waggle dance" in first
    assert second.startswith(f"{expected[1].id};")
    assert text.count("[id ") == 2
    # called as a model's tool call, the documents come back as the message's artifact
    message = tool.invoke({"type": "tool_call", "id": "call-1", "name": tool.name, "args": {"query": QUESTION}})
    assert isinstance(message, ToolMessage) and str(message.content).startswith(f"[id {expected[0].id};")
    assert [d.metadata["hopmem_id"] for d in message.artifact] == [r.id for r in memory.search(QUESTION, k=5)]
    # a query hopmem refuses is an error the model reads, not a crash; arguments out of bounds fail validation
    assert tool.invoke({"query": "   "}).startswith("The query is empty")
    with pytest.raises(ValidationError):
        tool.invoke({"query": QUESTION, "k": 500})


def test_remember_tool_writes_as_an_agent_through_the_trust_gate(tmp_path: Path) -> None:
    trusting = Memory(settings_for(tmp_path))
    reply = remember_tool(trusting, agent="scribe").invoke({"content": "The harbour office opens at seven."})
    assert reply.startswith("Remembered as memory ")
    stored = trusting.get(int(reply.removeprefix("Remembered as memory ").rstrip(".")))
    assert (stored.agent_id, stored.source_class) == ("scribe", "agent")
    trusting.close()
    # a threshold above a new agent's trust: the gate holds the write, and the tool says so
    strict = Memory(settings_for(tmp_path, trust_threshold=0.9))
    reply = remember_tool(strict, agent="newcomer").invoke({"content": "The harbour office closes at noon."})
    assert reply.startswith("Held for review as memory ")
    held = int(reply.split()[5].rstrip(":"))
    assert held not in [r.id for r in strict.search("harbour office closes", k=5)]
    strict.approve(held)
    assert held in [r.id for r in strict.search("harbour office closes", k=5)]
    # an agent's handle cannot write as another agent: a tool error, nothing written
    as_bot = Memory(settings_for(tmp_path), agent="bot")
    assert "cannot act as" in remember_tool(as_bot, agent="other").invoke({"content": "Another fact."})
    as_bot.close()
    strict.close()


def test_a_langgraph_graph_calls_the_search_tool(memory: Memory) -> None:
    """A LangGraph agent loop (model node, ``ToolNode``, ``tools_condition``) that searches hopmem.

    The chat model is langchain_core's ``GenericFakeChatModel`` with a scripted tool call, standing only for the chat
    model: the bundled 135M model cannot make tool calls. The graph, the ToolNode and the tool run for real, and the
    final message is built from what the tool returned.
    """
    tool = search_tool(memory, k=2)
    call = {"name": tool.name, "args": {"query": "waggle dance honeybees"}, "id": "call-1", "type": "tool_call"}
    model = GenericFakeChatModel(messages=iter([AIMessage(content="", tool_calls=[call])]))

    def agent(state: MessagesState) -> dict[str, list[object]]:
        last = state["messages"][-1]
        if isinstance(last, ToolMessage):  # the model's second turn: answer from the tool's first passage
            return {"messages": [AIMessage(content="From memory: " + str(last.content).split("\n")[0])]}
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([tool]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    result = graph.compile().invoke({"messages": [HumanMessage(content=QUESTION)]})
    messages = result["messages"]
    tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
    assert len(tool_messages) == 1 and tool_messages[0].tool_call_id == "call-1"
    top = memory.search("waggle dance honeybees", k=2)[0]
    assert str(tool_messages[0].content).startswith(f"[id {top.id}; title 'How honeybees share directions'")
    assert tool_messages[0].artifact[0].metadata["hopmem_id"] == top.id
    assert messages[-1].content == "From memory: " + str(tool_messages[0].content).split("\n")[0]
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]


def test_a_tool_node_runs_several_calls_on_one_memory_at_once(memory: Memory) -> None:
    """LangGraph's ToolNode runs a message's tool calls in parallel threads over one Memory (one SQLite connection):
    every call answers with its own result, the writes stored as written. (The integrations also take one lock per
    memory around each call; this run passed without it too, so it checks the outcome, not the need for the lock.)"""
    search, remember = search_tool(memory, k=1), remember_tool(memory, agent="assistant")
    asked = [("search_memory", {"query": f"question {n} about tides and bees"}) for n in range(4)]
    asked += [("remember", {"content": f"Fact {n}: the hive has {n} frames."}) for n in range(4)]
    calls = [{"name": name, "args": args, "id": f"c{n}", "type": "tool_call"} for n, (name, args) in enumerate(asked)]
    graph = StateGraph(MessagesState).add_node("tools", ToolNode([search, remember])).add_edge(START, "tools")
    messages = graph.compile().invoke({"messages": [AIMessage(content="", tool_calls=calls)]})["messages"][1:]
    assert [m.tool_call_id for m in messages] == [c["id"] for c in calls]
    assert all(str(m.content).startswith("[id ") for m in messages[:4])
    stored = [int(str(m.content).split()[3].rstrip(".")) for m in messages[4:]]
    assert [memory.get(i).content for i in stored] == [f"Fact {n}: the hive has {n} frames." for n in range(4)]
