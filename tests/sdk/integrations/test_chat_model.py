"""``HopmemChatModel``: hopmem's own LLM (SmolLM2-135M on llama.cpp, the packaged GGUF) drives a LangGraph agent loop,
its tool calls made under a JSON schema; no scripted model here."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from hopmem import ConfigError, Memory
from hopmem.integrations.chat_model import HopmemChatModel, chat_messages
from hopmem.integrations.langchain import search_tool
from tests.sdk.integrations.conftest import settings_for

pytest.importorskip("llama_cpp", reason="the llamacpp extra (llama-cpp-python) is not installed")

QUESTION = "How do honeybees share directions?"


def test_the_real_model_calls_the_search_tool_in_a_langgraph_loop(memory: Memory, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, llm_backend="llamacpp")
    tool = search_tool(memory, k=1)
    chat = HopmemChatModel.from_settings(settings, max_tokens=32)
    first = chat.bind_tools([tool], tool_choice=tool.name)  # the first turn must search; then the model answers

    def agent(state: MessagesState) -> dict[str, list[object]]:
        model = chat if isinstance(state["messages"][-1], ToolMessage) else first
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([tool]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    messages = graph.compile().invoke({"messages": [HumanMessage(content=QUESTION)]})["messages"]

    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    call = messages[1].tool_calls[0]
    assert call["name"] == "search_memory" and isinstance(call["args"]["query"], str) and call["args"]["query"]
    assert 1 <= call["args"].get("k", 1) <= 20  # the schema's bounds held the model's number
    found = memory.search(call["args"]["query"], k=call["args"].get("k", 1))
    assert str(messages[2].content).startswith(f"[id {found[0].id}; ")  # the tool ran on the model's own query
    assert isinstance(messages[3], AIMessage) and messages[3].content.strip() and not messages[3].tool_calls
    assert messages[1].usage_metadata is not None and messages[1].usage_metadata["output_tokens"] > 0


def test_unforced_the_model_chooses_among_the_tools_or_words(tmp_path: Path, memory: Memory) -> None:
    chat = HopmemChatModel.from_settings(settings_for(tmp_path, llm_backend="llamacpp"), max_tokens=16)
    reply = chat.bind_tools([search_tool(memory)]).invoke([HumanMessage(content=QUESTION)])
    assert isinstance(reply, AIMessage)
    assert [c["name"] for c in reply.tool_calls] in ([], ["search_memory"])
    assert reply.tool_calls or reply.content.strip()


def test_refusals(tmp_path: Path, memory: Memory) -> None:
    with pytest.raises(ConfigError, match="llm_backend is 'none'"):
        HopmemChatModel.from_settings(settings_for(tmp_path))
    chat = HopmemChatModel(llm=object())
    with pytest.raises(ValueError, match="tool_choice 'shout'"):
        chat.bind_tools([search_tool(memory)], tool_choice="shout")


def test_messages_become_plain_chat_turns() -> None:
    call = {"name": "search_memory", "args": {"query": "bees"}, "id": "c1", "type": "tool_call"}
    turns = chat_messages(
        [
            HumanMessage(content="Where are the bees?"),
            AIMessage(content="", tool_calls=[call]),
            ToolMessage(content="[id 1] The hives.", tool_call_id="c1", name="search_memory"),
        ]
    )
    assert turns == [
        {"role": "user", "content": "Where are the bees?"},
        {"role": "assistant", "content": '(I called search_memory({"query": "bees"}).)'},
        {"role": "user", "content": "Result of search_memory:\n[id 1] The hives."},
    ]
