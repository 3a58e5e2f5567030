"""LangChain over hopmem: a retriever, a search tool and a remember tool.

``HopmemRetriever`` is a LangChain ``BaseRetriever`` over :meth:`hopmem.Memory.search` (``Document.id`` is the
memory id; trust, source and scores are in the metadata). :func:`search_tool` is the tool an LLM agent calls to
read the memory: it answers with the passages, each headed by its id, trust and source, so the model can cite and
weigh them (``create_retriever_tool`` would show the text alone). :func:`remember_tool` lets the agent write: the
write is an agent's, so the trust gate judges it and may hold it in quarantine, and the tool says so.

Example::

    from langgraph.prebuilt import create_react_agent
    from hopmem.integrations.langchain import remember_tool, search_tool

    graph = create_react_agent(chat_model, [search_tool(memory), remember_tool(memory)])
"""

from __future__ import annotations

import asyncio
from typing import Any

from hopmem.integrations.base import memory_lock, missing_framework, passage_line, result_metadata
from hopmem.memory.errors import HopmemError
from hopmem.memory.records import SearchResult
from hopmem.memory_api import Memory

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.tools import StructuredTool, ToolException
    from pydantic import BaseModel, ConfigDict, Field
except ImportError as exc:  # pragma: no cover - langchain-core comes with langgraph, a core dependency
    raise missing_framework("langchain-core", "langchain_core") from exc

__all__ = ["HopmemRetriever", "remember_tool", "result_document", "search_tool"]

SEARCH_DESCRIPTION = (
    "Search the user's memory (their documents and what was remembered before) for passages about a question. "
    "Returns the best passages, each headed by its memory id, title, trust (0 to 1; lower means less reliable) and "
    "where it came from. Cite passages by id; prefer trusted ones when they disagree."
)
REMEMBER_DESCRIPTION = (
    "Remember a fact for later (one short, self-contained statement). The write may be held for the user's review "
    "when it looks unreliable; held facts are not found by searches until the user approves them."
)


def result_document(result: SearchResult) -> Document:
    """One search result as a LangChain ``Document`` (``id`` = the memory id as text)."""
    return Document(page_content=result.record.content, metadata=result_metadata(result), id=str(result.record.id))


class HopmemRetriever(BaseRetriever):
    """A LangChain retriever over :meth:`hopmem.Memory.search`: hopmem's passages as ``Document``, in its order.

    Attributes:
        memory: the memory to search (its tenant and trust weighting apply; quarantined memories never appear).
        k: passages per query (1 to 1000).
        mode: ``hybrid`` (default), ``lexical`` or ``dense``.
        filters: passed to :meth:`hopmem.Memory.search` with every query (``agent``, ``tags``, ``source_class``,
            ``since``, ``until``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Any
    k: int = 5
    mode: str = "hybrid"
    filters: dict[str, Any] = Field(default_factory=dict)

    def _search(self, query: str, k: int | None = None) -> list[Document]:
        memory: Memory = self.memory
        with memory_lock(memory):
            results = memory.search(query, k=k or self.k, mode=self.mode, **self.filters)
        return [result_document(r) for r in results]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self._search(query)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return await asyncio.to_thread(self._search, query)


def _passages_text(documents: list[Document]) -> str:
    if not documents:
        return "Nothing in the memory matches this query."
    return "\n\n".join(f"{passage_line(d.metadata)}\n{d.page_content}" for d in documents)


def search_tool(
    memory: Memory,
    *,
    name: str = "search_memory",
    description: str = SEARCH_DESCRIPTION,
    k: int = 5,
    max_k: int = 20,
    mode: str = "hybrid",
    **filters: Any,
) -> StructuredTool:
    """A tool that searches ``memory``: the model gives ``query`` (and optionally ``k``, up to ``max_k``).

    The tool's content is the passages as text, each headed ``[id N; title ...; trust 0.87; from SOURCE]``; its
    artifact (``ToolMessage.artifact`` when a graph calls it) is the list of ``Document``.

    Args:
        memory: the memory to search.
        name: the tool's name as the model sees it.
        description: what the model is told the tool does.
        k: passages when the model names no ``k``.
        max_k: the most passages the model may ask for.
        mode: the search mode (``hybrid``, ``lexical``, ``dense``).
        filters: passed to every search (``agent``, ``tags``, ``source_class``, ``since``, ``until``).
    """
    retriever = HopmemRetriever(memory=memory, k=k, mode=mode, filters=filters)
    default_k = k  # a class body cannot read a name of the enclosing function that it also assigns

    class SearchInput(BaseModel):
        query: str = Field(description="what to look for, in words")
        k: int = Field(default=default_k, ge=1, le=max_k, description=f"how many passages to return (1 to {max_k})")

    def run(query: str, k: int = k) -> tuple[str, list[Document]]:
        try:
            documents = retriever._search(query, k)
        except HopmemError as exc:  # a bad query: the model reads the sentence and can retry
            raise ToolException(str(exc)) from exc
        return _passages_text(documents), documents

    async def arun(query: str, k: int = k) -> tuple[str, list[Document]]:
        return await asyncio.to_thread(run, query, k)

    return StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name=name,
        description=description,
        args_schema=SearchInput,
        response_format="content_and_artifact",
        handle_tool_error=True,
    )


def remember_tool(
    memory: Memory,
    *,
    name: str = "remember",
    description: str = REMEMBER_DESCRIPTION,
    agent: str | None = None,
    source_class: str = "agent",
) -> StructuredTool:
    """A tool that writes to ``memory`` as an agent, through the trust gate.

    The writer is ``agent``, else the memory's own agent (a ``Memory`` opened with ``agent=``), else the
    settings' ``agent_name``: never the user, so the gate judges every write (low trust, write bursts,
    contradictions of trusted memories) and may hold it in quarantine. The tool tells the model which happened:
    ``Remembered as memory N.`` or ``Held for review as memory N ...``; a refused write is a tool error the model reads.

    Args:
        memory: the memory to write to.
        name: the tool's name as the model sees it.
        description: what the model is told the tool does.
        agent: the agent identity the writes carry (see above).
        source_class: the source class of the writes (``agent`` by default; ``untrusted`` for text from the web).
    """
    writer = agent or memory.agent or memory.settings.agent_name

    class RememberInput(BaseModel):
        content: str = Field(description="the fact to remember, as one self-contained statement")
        title: str | None = Field(default=None, description="a short title (optional)")
        tags: list[str] | None = Field(default=None, description="tags to file it under (optional)")

    def run(content: str, title: str | None = None, tags: list[str] | None = None) -> str:
        try:
            with memory_lock(memory):
                record = memory.add(content, title=title, tags=tags, agent=writer, source_class=source_class)
        except HopmemError as exc:  # invalid input or a write the gate refused: nothing was written
            raise ToolException(str(exc)) from exc
        if record.quarantined:
            return f"Held for review as memory {record.id}: it is stored but not searchable until the user approves it."
        return f"Remembered as memory {record.id}."

    async def arun(content: str, title: str | None = None, tags: list[str] | None = None) -> str:
        return await asyncio.to_thread(run, content, title, tags)

    return StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name=name,
        description=description,
        args_schema=RememberInput,
        handle_tool_error=True,
    )
