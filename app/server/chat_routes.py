"""``POST /v1/chat/completions`` and ``GET /v1/models``: the hopmem agent behind OpenAI's chat API.

The last user message is the question; the agent answers it from the key's tenant (``hopmem.Agent``), with numbered
citations. The reply carries them twice: in the message text (a "Sources" block) and as a structured extra field
``citations``, next to ``trace_id`` (the run's trace is logged under that id). Any ``model`` name is accepted; the
answer always comes from the agent (``GET /v1/models`` lists it as ``hopmem-agent``).

The LLM is checked before the agent runs: when it cannot be loaded or reached the route answers 503 in one sentence
(the memory routes do not need it and keep working). With ``llm_backend = "none"`` the agent answers extractively.

Streaming (``stream: true``) runs the agent in a worker thread that hands its events to the response; when the
client goes away the thread stops pulling events and closes the agent's run, so the graph's ``remember`` node, which
runs only after the ``answer`` node has finished, never runs for an answer the client did not receive, and a
partial answer is never written (the answer node hands its text on only whole).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from hopmem.app.handles import HandlePool, Identity
from hopmem.app.server.auth import Principal, principal
from hopmem.app.server.errors import ApiError
from hopmem.memory.errors import HopmemError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["chat"])
Who = Annotated[Principal, Depends(principal)]
MODEL_ID = "hopmem-agent"
_LLM_CHECK_TTL_S = 5.0


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatIn(BaseModel):
    """OpenAI's chat request; fields hopmem does not use (temperature, tools, ...) are accepted and ignored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"model": MODEL_ID, "messages": [{"role": "user", "content": "When is the staff meeting?"}]}]
        },
    )
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


def _question(body: ChatIn) -> str:
    for message in reversed(body.messages):
        if message.role == "user":
            content = message.content
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
            if isinstance(content, str):
                return content
    raise ApiError(400, "The messages hold no user message with text; add one to ask the agent.", "no_question")


def _sources(citations: list[dict[str, Any]]) -> str:
    cited = [c for c in citations if c.get("cited")]
    if not cited:
        return ""
    lines = [f"[{c['n']}] {c.get('title') or '(untitled)'} (memory {c['id']})" for c in cited]
    return "\n\nSources:\n" + "\n".join(lines)


def _citations(citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "n": c["n"],
            "id": c["id"],
            "title": c.get("title"),
            "text": c.get("text"),
            "score": c.get("score"),
            "cited": bool(c.get("cited")),
        }
        for c in citations
    ]


_llm_checked: dict[str, tuple[float, str | None]] = {}


def llm_problem(agent: Any) -> str | None:
    """Why the agent's LLM cannot answer now (one sentence), or None when it can (or none is configured)."""
    settings = agent.settings
    if settings.llm_backend == "none":
        return None
    key = f"{settings.llm_backend}:{settings.llm_model}:{settings.llm_base_url}"
    at, problem = _llm_checked.get(key, (0.0, None))
    if time.monotonic() - at < _LLM_CHECK_TTL_S:
        return problem
    try:
        llm = agent.llm
        problem = None
        if settings.llm_backend == "openai" and llm is not None:
            import httpx

            url = settings.llm_base_url.rstrip("/") + "/models"
            headers = {"Authorization": f"Bearer {settings.llm_api_key}"}
            try:
                httpx.get(url, headers=headers, timeout=min(3.0, settings.llm_timeout_s)).raise_for_status()
            except httpx.HTTPError as exc:
                problem = f"The LLM server at {settings.llm_base_url} does not answer ({type(exc).__name__})"
    except HopmemError as exc:
        problem = str(exc).rstrip(".")
    _llm_checked[key] = (time.monotonic(), problem)
    return problem


def _check_llm(agent: Any) -> None:
    problem = llm_problem(agent)
    if problem:
        raise ApiError(503, f"{problem}; the chat is unavailable, the memory API still works.", "llm_unavailable")


def _completion(answer: Any, trace_id: str, created: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{trace_id}",
        "object": "chat.completion",
        "created": created,
        "model": MODEL_ID,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.answer + _sources(answer.citations)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "citations": _citations(answer.citations),
        "trace_id": trace_id,
    }


def _log_trace(trace_id: str, answer: Any) -> None:
    log.info("trace %s: %s", trace_id, json.dumps(answer.trace, default=str))


@router.get("/models", summary="The models this server offers")
def models(who: Who) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "hopmem"}]}


@router.post("/chat/completions", summary="Ask the hopmem agent (OpenAI-compatible)", response_model=None)
async def chat_completions(body: ChatIn, who: Who, request: Request) -> dict[str, Any] | StreamingResponse:
    """Answer the last user message from the key's memory, with citations; ``stream: true`` streams over SSE."""
    question = _question(body)
    pool: HandlePool = request.app.state.hopmem.handles
    identity = who.identity

    def check() -> int:
        with pool.agent(identity) as agent:
            _check_llm(agent)
            return int(agent.settings.max_question_chars)

    max_chars = await run_in_threadpool(check)
    trace_id = uuid.uuid4().hex
    created = int(time.time())
    if not body.stream:

        def run() -> Any:
            with pool.agent(identity) as agent:
                return agent.ask(question)

        answer = await run_in_threadpool(run)
        _log_trace(trace_id, answer)
        return _completion(answer, trace_id, created)
    from hopmem.agent_api import validate_question

    validate_question(question, max_chars)  # a bad question is a 400, not a broken stream
    return StreamingResponse(
        _sse(pool, identity, question, trace_id, created),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


_END = object()


def _pump(
    pool: HandlePool,
    identity: Identity,
    question: str,
    loop: asyncio.AbstractEventLoop,
    queue: asyncio.Queue[Any],
    stop: threading.Event,
) -> None:
    """Run the agent in this thread, handing its events over, until the run ends or ``stop`` is set; then close it."""
    try:
        with pool.agent(identity) as agent:
            events = agent.stream(question)
            try:
                for event in events:
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()  # GeneratorExit in the graph: nodes not yet started (remember) never run
    except Exception as exc:  # handed to the response, which reports it in the stream
        loop.call_soon_threadsafe(queue.put_nowait, exc)
    finally:
        loop.call_soon_threadsafe(queue.put_nowait, _END)


def _chunk(run_id: str, created: int, delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
    data = {
        "id": f"chatcmpl-{run_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL_ID,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _sse(pool: HandlePool, identity: Identity, question: str, trace_id: str, created: int) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()
    worker = threading.Thread(
        target=_pump, args=(pool, identity, question, loop, queue, stop), daemon=True, name="hopmem-chat"
    )
    worker.start()
    streamed = False
    try:
        yield _chunk(trace_id, created, {"role": "assistant", "content": ""}, None)
        while True:
            event = await queue.get()
            if event is _END:
                break
            if isinstance(event, Exception):
                message = (
                    str(event) if isinstance(event, HopmemError) else f"The agent failed ({type(event).__name__})."
                )
                log.warning("chat stream %s failed: %s", trace_id, event)
                error = {"error": {"message": message, "type": "server_error", "code": "agent_failed"}}
                yield f"data: {json.dumps(error)}\n\n"
                break
            if event["type"] == "token":
                streamed = True
                yield _chunk(trace_id, created, {"content": event["text"]}, None)
            elif event["type"] == "step":
                yield f": step {event['step'].get('step', '')}\n\n"  # an SSE comment: progress, ignored by clients
            elif event["type"] == "answer":
                answer = event["answer"]
                _log_trace(trace_id, answer)
                text = _sources(answer.citations) if streamed else answer.answer + _sources(answer.citations)
                yield _chunk(trace_id, created, {"content": text}, None)
                yield _chunk(
                    trace_id,
                    created,
                    {},
                    "stop",
                    citations=_citations(answer.citations),
                    trace_id=trace_id,
                    answer=answer.answer,
                )
        yield "data: [DONE]\n\n"
    finally:
        stop.set()  # the client left or the stream ended: the worker stops at the next event and closes the run
