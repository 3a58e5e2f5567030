"""The memory REST API (``/v1/memories``, ``/v1/quarantine``, ``/v1/trust``, ``/v1/stats``, ``/v1/ingest``).

Every route maps the request's key to a principal and calls :class:`hopmem.Memory` opened for that tenant and agent;
the rules (tenant confinement, the trust gate, who may review quarantine, what counts as a correction) are the memory
engine's. Routes are plain functions, so FastAPI runs them in its thread pool.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile

from hopmem.app.handles import HandlePool
from hopmem.app.server.auth import Principal, principal
from hopmem.app.server.schemas import BatchIn, EraseIn, FeedbackIn, MemoryIn, ReviewIn, SearchIn, UpdateIn

router = APIRouter(prefix="/v1", tags=["memory"])
Who = Annotated[Principal, Depends(principal)]


def _handles(request: Request) -> HandlePool:
    return cast(HandlePool, request.app.state.hopmem.handles)


@router.post("/memories", summary="Remember one text")
def add_memory(body: MemoryIn, who: Who, request: Request) -> dict[str, Any]:
    """Write one memory as the key's agent (or the user); ``quarantined`` says the trust gate held it for review."""
    with _handles(request).memory(who.identity) as memory:
        record = memory.add(
            body.content,
            title=body.title,
            tags=body.tags,
            metadata=body.metadata,
            agent=body.agent,
            source_class=body.source_class,
            importance=body.importance,
            source=body.source,
            derived_from=body.derived_from,
        )
    return dict(record.to_dict())


@router.post("/memories/batch", summary="Remember many texts")
def add_batch(body: BatchIn, who: Who, request: Request) -> dict[str, Any]:
    """Write many memories; every item is checked before the first write, so one bad item writes nothing."""
    with _handles(request).memory(who.identity) as memory:
        results = memory.add_many(body.items, agent=body.agent, source_class=body.source_class, progress=False)
    return {"results": [vars(r) for r in results]}


@router.post("/memories/search", summary="Search memories")
def search(body: SearchIn, who: Who, request: Request) -> dict[str, Any]:
    """The top ``k`` memories of the key's tenant for ``query``, optionally filtered by agent, tags, class, time."""
    with _handles(request).memory(who.identity) as memory:
        results = memory.search(
            body.query,
            k=body.k,
            mode=body.mode,
            agent=body.agent,
            tags=body.tags,
            source_class=body.source_class,
            since=body.since,
            until=body.until,
        )
    return {"results": [r.to_dict() for r in results]}


@router.get("/memories/{memory_id}", summary="Read one memory")
def get_memory(memory_id: int, who: Who, request: Request) -> dict[str, Any]:
    """One memory of the key's tenant, with its provenance (404 when the tenant has no such memory)."""
    with _handles(request).memory(who.identity) as memory:
        return dict(memory.get(memory_id).to_dict())


@router.patch("/memories/{memory_id}", summary="Change a memory")
def update_memory(memory_id: int, body: UpdateIn, who: Who, request: Request) -> dict[str, Any]:
    """Change content, title, tags, metadata or importance; the change joins the memory's provenance."""
    with _handles(request).memory(who.identity) as memory:
        record = memory.update(
            memory_id,
            content=body.content,
            title=body.title,
            tags=body.tags,
            metadata=body.metadata,
            importance=body.importance,
            reason=body.reason,
        )
    return dict(record.to_dict())


@router.delete("/memories/{memory_id}", summary="Erase one memory")
def delete_memory(memory_id: int, who: Who, request: Request) -> dict[str, Any]:
    """Erase one memory for good (vectors, feedback and conversations included); erases nothing of other tenants."""
    with _handles(request).memory(who.identity) as memory:
        return dict(memory.erase(memory_id).to_dict())


@router.post("/memories/erase", summary="Erase by ids, filter or everything")
def erase(body: EraseIn, who: Who, request: Request) -> dict[str, Any]:
    """Erase memories by ids, by a filter (agent, tags, class, time), or the whole tenant (``everything``)."""
    with _handles(request).memory(who.identity) as memory:
        report = memory.erase(
            body.ids,
            agent=body.agent,
            tags=body.tags,
            source_class=body.source_class,
            since=body.since,
            until=body.until,
            everything=body.everything,
        )
    return dict(report.to_dict())


@router.post("/memories/{memory_id}/feedback", summary="Give feedback on a memory")
def feedback(memory_id: int, body: FeedbackIn, who: Who, request: Request) -> dict[str, Any]:
    """Record ``up``, ``down`` or ``click``; it is also a trust signal about the memory's writer."""
    with _handles(request).memory(who.identity) as memory:
        event = memory.feedback(memory_id, body.kind, query=body.query)
    return {"event": event}


@router.get("/quarantine", summary="List writes held for review")
def quarantine(who: Who, request: Request) -> dict[str, Any]:
    """The tenant's quarantined writes, oldest first."""
    with _handles(request).memory(who.identity) as memory:
        return {"held": memory.quarantine()}


@router.post("/quarantine/approve", summary="Approve held writes (user key)")
def approve(body: ReviewIn, who: Who, request: Request) -> dict[str, Any]:
    """Release quarantined memories; only a user key may (an agent key gets 403)."""
    with _handles(request).memory(who.identity) as memory:
        return {"approved": memory.approve(body.ids, note=body.note)}


@router.post("/quarantine/reject", summary="Reject held writes (user key)")
def reject(body: ReviewIn, who: Who, request: Request) -> dict[str, Any]:
    """Erase quarantined memories for good; only a user key may (an agent key gets 403)."""
    with _handles(request).memory(who.identity) as memory:
        return dict(memory.reject(body.ids).to_dict())


@router.get("/trust", summary="Trust of the tenant's agents")
def trust(who: Who, request: Request, agent: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    """The trust of ``agent``, or of every agent of the tenant (most trusted first)."""
    with _handles(request).memory(who.identity) as memory:
        return {"agents": [t.to_dict() for t in memory.trust_of(agent)]}


@router.get("/stats", summary="What the tenant's store holds")
def stats(who: Who, request: Request) -> dict[str, Any]:
    with _handles(request).memory(who.identity) as memory:
        data = memory.stats()
    data.pop("path", None)  # the server's file layout is not the client's business
    return {**data, "tenant": who.tenant, "agent": who.agent}


@router.post("/ingest", summary="Ingest uploaded files")
def ingest(who: Who, request: Request, files: Annotated[list[UploadFile], File()]) -> dict[str, Any]:
    """Read, chunk, embed and store uploaded files (.txt .md .html .pdf .docx, BEIR corpus.jsonl)."""
    with tempfile.TemporaryDirectory(prefix="hopmem-upload-") as tmp:
        paths: list[Path] = []
        for position, upload in enumerate(files):
            name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(upload.filename or "upload.txt").name)[:120] or "upload.txt"
            target = Path(tmp) / f"{position}" / name
            target.parent.mkdir()
            with target.open("wb") as out:
                while chunk := upload.file.read(1 << 20):
                    out.write(chunk)
            paths.append(target)
        with _handles(request).memory(who.identity) as memory:
            report = memory.ingest(paths, progress=False)
    data = report.to_dict()
    return {k: _relative(v, tmp) for k, v in data.items()}


def _relative(value: Any, tmp: str) -> Any:
    """Upload paths without the server's temporary folder."""
    if isinstance(value, str):
        return value.replace(tmp + "/", "")
    if isinstance(value, list | tuple):
        return [_relative(v, tmp) for v in value]
    if isinstance(value, dict):
        return {k: _relative(v, tmp) for k, v in value.items()}
    return value
