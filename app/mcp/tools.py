"""The seven MCP tools: remember, recall, search, ask, erase, feedback and trust_status, each one SDK call.

Every tool returns a JSON object (structured content, and the same JSON as text): stored text, however hostile,
goes back as the value of a field, never as instructions of the server. A :class:`HopmemError` raised by the SDK
becomes a tool error carrying its one sentence (see :class:`hopmem.app.mcp.server.HopmemMCP`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.types import ToolAnnotations
from pydantic import Field

from hopmem.app.mcp.handles import Handles

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

Mode = Literal["hybrid", "lexical", "dense"]
SourceClass = Literal["user", "agent", "conversation", "tool", "external", "untrusted"]
Tags = Annotated[list[str] | None, Field(description="only memories carrying any of these tags")]
SourceClasses = Annotated[list[SourceClass] | None, Field(description="only memories of these source classes")]
Since = Annotated[float | None, Field(description="only memories written at or after this Unix time (seconds)")]
Until = Annotated[float | None, Field(description="only memories written before this Unix time (seconds)")]
ByAgent = Annotated[str | None, Field(description="only memories written by this agent")]


def memory_dict(record: Any) -> dict[str, Any]:
    """The fields of a memory a client needs (the content is data, returned as a string field)."""
    return {
        "id": record.id,
        "title": record.title,
        "content": record.content,
        "tags": record.tags,
        "metadata": record.metadata,
        "source_class": record.source_class,
        "agent": record.agent_id,
        "source": record.source,
        "created_at": record.created_at,
        "quarantined": record.quarantined,
    }


def recent(handles: Handles, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` most recently written visible memories of the current identity's tenant, newest first."""
    with handles.memory() as memory:
        return [memory_dict(r) for r in memory.recent(limit)]


def register_tools(server: MCPServer, handles: Handles) -> None:
    """Add the seven tools to ``server``; every call acts for ``handles.current()``."""
    settings = handles.settings

    @server.tool(
        annotations=ToolAnnotations(
            title="Remember", read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        )
    )
    def remember(
        content: Annotated[str, Field(description="the text to remember")],
        title: Annotated[str | None, Field(description="a short title")] = None,
        tags: Annotated[list[str] | None, Field(description="labels to filter on later")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="any JSON object to keep with the text")] = None,
        source_class: Annotated[
            SourceClass | None,
            Field(description="where the text comes from (default: agent when acting as an agent, else user)"),
        ] = None,
        importance: Annotated[float, Field(ge=0.0, le=1.0, description="0 (trivial) to 1 (essential)")] = 0.5,
        source: Annotated[str | None, Field(description="where the text came from (a URL, a file, a tool)")] = None,
    ) -> dict[str, Any]:
        """Store a memory for later recall; storing the same text again returns the memory already stored.

        The trust gate may hold the write for review (quarantined: true): it is stored but not visible until the
        user approves it.
        """
        who = handles.current()
        with handles.memory(who) as memory:
            record = memory.add(
                content,
                title=title,
                tags=tags,
                metadata=metadata,
                source_class=source_class or ("agent" if who.agent else "user"),
                importance=importance,
                source=source,
            )
        return {"memory": memory_dict(record)}

    @server.tool(
        annotations=ToolAnnotations(title="Recall", read_only_hint=True, idempotent_hint=True, open_world_hint=False)
    )
    def recall(
        id: Annotated[int | None, Field(ge=1, description="the memory to read; omit to get the latest ones")] = None,
        limit: Annotated[int, Field(ge=1, le=100, description="how many recent memories, newest first")] = 10,
    ) -> dict[str, Any]:
        """Read one memory by id, or the most recently written memories (newest first)."""
        if id is not None:
            with handles.memory() as memory:
                return {"memories": [memory_dict(memory.get(id))]}
        return {"memories": recent(handles, limit)}

    @server.tool(
        annotations=ToolAnnotations(
            title="Search memory", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        )
    )
    def search(
        query: Annotated[str, Field(description="what to look for")],
        mode: Annotated[Mode, Field(description="hybrid (lexical + dense), lexical (BM25) or dense")] = "hybrid",
        k: Annotated[int, Field(ge=1, le=1000, description="how many results")] = 10,
        agent: ByAgent = None,
        tags: Tags = None,
        source_class: SourceClasses = None,
        since: Since = None,
        until: Until = None,
    ) -> dict[str, Any]:
        """Search the memory (documents and written memories) without answering, best first."""
        with handles.memory() as memory:
            results = memory.search(
                query, k=k, mode=mode, agent=agent, tags=tags, source_class=source_class, since=since, until=until
            )
        return {"results": [r.to_dict() for r in results]}

    remembers = settings.remember_answers
    ask_note = " The answer is written back as an agent memory." if remembers else ""

    @server.tool(
        description="Answer a question from the memory, with numbered citations of the passages it used." + ask_note,
        annotations=ToolAnnotations(
            title="Ask",
            read_only_hint=not remembers,
            destructive_hint=False,
            idempotent_hint=not remembers,
            open_world_hint=False,
        ),
    )
    def ask(question: Annotated[str, Field(description="the question")]) -> dict[str, Any]:
        with handles.agent() as agent:
            answer = agent.ask(question)
        keys = ("n", "id", "title", "text", "score", "cited")
        citations = [{key: c.get(key) for key in keys} for c in answer.citations]
        return {"question": answer.question, "answer": answer.answer, "citations": citations}

    @server.tool(
        annotations=ToolAnnotations(
            title="Erase", read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        )
    )
    def erase(
        ids: Annotated[list[int] | None, Field(description="the memories to erase")] = None,
        agent: ByAgent = None,
        tags: Tags = None,
        source_class: SourceClasses = None,
        since: Since = None,
        until: Until = None,
        everything: Annotated[bool, Field(description="erase the whole tenant; takes no other selector")] = False,
    ) -> dict[str, Any]:
        """Erase memories for good, by id, by filter (combined: ids that pass the filter), or everything; an agent's
        key erases only the memories that agent wrote."""
        with handles.memory() as memory:
            report = memory.erase(
                ids,
                agent=agent,
                tags=tags,
                source_class=source_class,
                since=since,
                until=until,
                everything=everything,
            )
        return {"erased": report.to_dict()}

    @server.tool(
        annotations=ToolAnnotations(
            title="Feedback", read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
        )
    )
    def feedback(
        memory_id: Annotated[int, Field(ge=1, description="the memory the feedback is about")],
        kind: Annotated[Literal["up", "down", "click"], Field(description="up, down or click")] = "up",
        query: Annotated[str | None, Field(description="the query the memory was found for")] = None,
    ) -> dict[str, Any]:
        """Say whether a memory was useful; it trains the ranking and counts for or against its writer's trust."""
        with handles.memory() as memory:
            event = memory.feedback(memory_id, kind, query=query)
        return {"event": event, "memory_id": memory_id, "kind": kind}

    @server.tool(
        annotations=ToolAnnotations(
            title="Trust status", read_only_hint=True, idempotent_hint=True, open_world_hint=False
        )
    )
    def trust_status(
        agent: Annotated[str | None, Field(description="one agent; omit for every agent of the tenant")] = None,
    ) -> dict[str, Any]:
        """The trust of the tenant's agents (a Beta mean from 0 to 1, most trusted first)."""
        with handles.memory() as memory:
            rows = memory.trust_of(agent)
        return {"agents": [row.to_dict() for row in rows]}
