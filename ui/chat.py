"""The Chat tab: streamed answers in a conversation thread, the reasoning view beside them, clickable citations,
a stop button, and thumbs on the answer and on each piece of evidence.

Every handler is a thin call of the SDK: ``Agent.stream`` (steps, tokens, the answer), ``Agent.threads`` and
``Agent.history`` (conversations), ``Memory.get`` / ``memory_trust`` (a citation's card) and ``Memory.feedback``
(thumbs, which the engine turns into behavioural data and trust signals).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import gradio as gr

from hopmem.ui import render
from hopmem.ui.context import UIContext, explain
from hopmem.ui.runs import stream_in_worker

NO_THREAD = ""


def _note(steps: list[dict[str, Any]]) -> str | None:
    """One sentence for the chat when the answer step fell back because the LLM failed (None otherwise)."""
    step = next((s for s in steps if s.get("step") == "answer"), None)
    warning = str((step or {}).get("warning") or "")
    prefix, suffix = "LLM failed (", "); extractive answer"
    if warning.startswith(prefix) and warning.endswith(suffix):
        reason = warning[len(prefix) : -len(suffix)].rstrip(".")
        return f"⚠ {reason}, so this answer is extracted from the evidence without it."
    return None


def ask(
    question: str,
    history: list[dict[str, Any]] | None,
    thread_id: str | None,
    overrides: dict[str, Any] | None,
    ctx: UIContext,
    request: gr.Request | None,
) -> Iterator[tuple[Any, ...]]:
    """Stream one turn: yields (chat, reasoning, citations, last answer, thread id, question box, status)."""
    chat = list(history or [])
    question = (question or "").strip()
    if not question:
        yield chat, gr.skip(), gr.skip(), gr.skip(), thread_id, "", "Type a question first."
        return
    thread_id = thread_id or uuid.uuid4().hex[:12]
    chat += [{"role": "user", "content": question}, {"role": "assistant", "content": "…"}]
    steps: list[dict[str, Any]] = []
    yield chat, render.reasoning_markdown(steps, running=True), gr.update(choices=[], value=None), {}, thread_id, "", ""
    try:
        agent, lock = ctx.handles.agent(ctx.who(request), overrides)
        text = ""
        answer = None
        stop = ctx.new_run(getattr(request, "session_hash", None))
        for event in stream_in_worker(agent, lock, question, thread_id, stop):
            if event["type"] == "step":
                steps.append(event["step"])
                yield chat, render.reasoning_markdown(steps, running=True), gr.skip(), gr.skip(), thread_id, "", ""
            elif event["type"] == "token":
                text += event["text"]
                chat[-1] = {"role": "assistant", "content": text}
                yield chat, gr.skip(), gr.skip(), gr.skip(), thread_id, "", ""
            else:
                answer = event["answer"]
        if answer is None:  # stopped before the end
            chat[-1] = {"role": "assistant", "content": (text or "…") + "\n\n(stopped)"}
            yield chat, render.reasoning_markdown(steps), gr.skip(), {}, thread_id, "", "Stopped."
            return
    except Exception as exc:  # one sentence in the chat, never a stack trace
        chat[-1] = {"role": "assistant", "content": f"⚠ {explain(exc)}"}
        yield chat, render.reasoning_markdown(steps), gr.skip(), {}, thread_id, "", explain(exc)
        return
    steps = list(answer.trace)
    note = _note(steps)
    chat[-1] = {"role": "assistant", "content": answer.answer + (f"\n\n{note}" if note else "")}
    remembered = next((s.get("id") for s in steps if s.get("step") == "remember" and s.get("id")), None)
    last = {
        "question": question,
        "answer": answer.answer,
        "citations": answer.citations,
        "remembered": remembered,
        "thread_id": thread_id,
    }
    choices = render.citation_choices(answer.citations)
    yield (
        chat,
        render.reasoning_markdown(steps),
        gr.update(choices=choices, value=None),
        last,
        thread_id,
        "",
        note or f"Answered with {len(answer.citations)} evidence passages.",
    )


def show_citation(memory_id: str | None, ctx: UIContext, request: gr.Request | None) -> str:
    """The card of a clicked citation: passage, source, trust and provenance."""
    if not memory_id:
        return ""
    try:
        with ctx.handles.memory(ctx.who(request)) as memory:
            record = memory.get(int(memory_id))
            trust = memory.memory_trust([record.id]).get(record.id)
        return render.memory_card(record, trust)
    except Exception as exc:
        return f"⚠ {explain(exc)}"


def _trust_line(memory: Any, record: Any) -> str:
    if record.agent_id is None:
        return "its text has no agent writer, so no trust changes; the ranking learns from it"
    now = memory.trust_of(record.agent_id)[0].mean
    return f"trust of its writer {record.agent_id!r} is now {now:.3f}"


def evidence_feedback(
    memory_id: str | None, kind: str, last: dict[str, Any] | None, ctx: UIContext, request: gr.Request | None
) -> tuple[str, str]:
    """Thumbs on one evidence passage (the selected citation): returns (status, the citation's refreshed card)."""
    if not memory_id:
        return "Click a citation first, then rate it.", gr.skip()
    try:
        with ctx.handles.memory(ctx.who(request)) as memory:
            record = memory.get(int(memory_id))
            before = memory.memory_trust([record.id]).get(record.id)
            memory.feedback(record.id, kind, query=(last or {}).get("question"))
            after = memory.memory_trust([record.id]).get(record.id)
            line = _trust_line(memory, record)
            card = render.memory_card(record, after)
        thumb = "▲ good" if kind == "up" else "▼ bad"
        change = f"memory trust {before:.3f} → {after:.3f}" if before is not None and after is not None else ""
        return f"Recorded {thumb} on #{record.id}: {change}; {line}.", card
    except Exception as exc:
        return f"⚠ {explain(exc)}", gr.skip()


def answer_feedback(kind: str, last: dict[str, Any] | None, ctx: UIContext, request: gr.Request | None) -> str:
    """Thumbs on the last answer: feedback on the memory it was remembered as, else on every passage it cites."""
    last = last or {}
    if not last.get("answer"):
        return "Ask a question first, then rate the answer."
    targets = [int(last["remembered"])] if last.get("remembered") else []
    targets = targets or [int(c["id"]) for c in last.get("citations") or [] if c.get("cited")]
    if not targets:
        return "This answer cites nothing and was not remembered, so there is nothing to rate."
    try:
        with ctx.handles.memory(ctx.who(request)) as memory:
            for memory_id in targets:
                memory.feedback(memory_id, kind, query=last.get("question"))
        thumb = "▲ good" if kind == "up" else "▼ bad"
        what = "the remembered answer" if last.get("remembered") else "the cited passages"
        return f"Recorded {thumb} on {what} ({', '.join(f'#{i}' for i in targets)})."
    except Exception as exc:
        return f"⚠ {explain(exc)}"


def list_threads(overrides: dict[str, Any] | None, ctx: UIContext, request: gr.Request | None) -> Any:
    """The conversations of this identity, for the thread picker."""
    try:
        agent, lock = ctx.handles.agent(ctx.who(request), overrides)
        with lock:
            threads = agent.threads()
    except Exception as exc:
        gr.Warning(explain(exc))
        return gr.update()
    choices = [(f"{t['title']} ({t['turns']} turns)", t["thread_id"]) for t in threads]
    return gr.update(choices=[("(new conversation)", NO_THREAD), *choices])


def open_thread(
    thread_id: str | None, overrides: dict[str, Any] | None, ctx: UIContext, request: gr.Request | None
) -> tuple[Any, ...]:
    """Resume a conversation: its turns back in the chat; (chat, thread id, reasoning, citations, last, status)."""
    if not thread_id:
        return [], None, render.reasoning_markdown([]), gr.update(choices=[], value=None), {}, "New conversation."
    try:
        agent, lock = ctx.handles.agent(ctx.who(request), overrides)
        with lock:
            turns = agent.history(thread_id)
    except Exception as exc:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), f"⚠ {explain(exc)}"
    chat = [{"role": t["role"], "content": t["content"]} for t in turns]
    return (
        chat,
        thread_id,
        render.reasoning_markdown([]),
        gr.update(choices=[], value=None),
        {},
        (f"Resumed a conversation of {len(turns) // 2} turns."),
    )


def build(ctx: UIContext, overrides: gr.State) -> None:
    """Lay out the Chat tab and wire its events (each with an ``api_name`` for gradio_client)."""
    thread = gr.State(None)
    last = gr.State({})
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                threads = gr.Dropdown(
                    label="Conversation",
                    choices=[("(new conversation)", NO_THREAD)],
                    value=NO_THREAD,
                    allow_custom_value=True,  # a thread id typed or sent through the API (the picker lists them)
                    scale=4,
                )
                refresh = gr.Button("↻ Conversations", scale=1)
            chatbot = gr.Chatbot(label="Chat", height=380, elem_id="chat", buttons=["copy"])
            question = gr.Textbox(
                label="Question", placeholder="Ask about your documents and memories…", elem_id="question", lines=1
            )
            with gr.Row():
                send = gr.Button("Ask", variant="primary", elem_id="ask")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
                up = gr.Button("▲ Good answer", elem_id="answer-up")
                down = gr.Button("▼ Bad answer", elem_id="answer-down")
            status = gr.Markdown(elem_id="chat-status")
            citations = gr.Radio(label="Citations: click one to see it", choices=[], elem_id="citations")
            with gr.Row():
                ev_up = gr.Button("▲ Good evidence", elem_id="evidence-up")
                ev_down = gr.Button("▼ Bad evidence", elem_id="evidence-down")
            card = gr.Markdown(elem_id="citation-card")
        with gr.Column(scale=2):
            gr.Markdown("#### Reasoning")
            reasoning = gr.Markdown(render.reasoning_markdown([]), elem_id="reasoning")

    def ask_fn(q: str, h: list[dict[str, Any]], t: str | None, o: dict[str, Any], request: gr.Request) -> Iterator:
        yield from ask(q, h, t, o, ctx, request)

    def show_fn(mid: str | None, request: gr.Request) -> str:
        return show_citation(mid, ctx, request)

    def ev_up_fn(mid: str | None, lst: dict[str, Any], request: gr.Request) -> tuple[str, str]:
        return evidence_feedback(mid, "up", lst, ctx, request)

    def ev_down_fn(mid: str | None, lst: dict[str, Any], request: gr.Request) -> tuple[str, str]:
        return evidence_feedback(mid, "down", lst, ctx, request)

    def up_fn(lst: dict[str, Any], request: gr.Request) -> str:
        return answer_feedback("up", lst, ctx, request)

    def down_fn(lst: dict[str, Any], request: gr.Request) -> str:
        return answer_feedback("down", lst, ctx, request)

    def threads_fn(o: dict[str, Any], request: gr.Request) -> Any:
        return list_threads(o, ctx, request)

    def open_fn(t: str | None, o: dict[str, Any], request: gr.Request) -> tuple[Any, ...]:
        return open_thread(t, o, ctx, request)

    outputs = [chatbot, reasoning, citations, last, thread, question, status]
    asked = send.click(ask_fn, [question, chatbot, thread, overrides], outputs, api_name="ask")
    submitted = question.submit(ask_fn, [question, chatbot, thread, overrides], outputs, api_visibility="private")

    def stop_fn(request: gr.Request) -> str:
        stopped = ctx.stop_run(getattr(request, "session_hash", None))
        return "Stopped." if stopped else "Nothing is running."

    stop.click(stop_fn, None, [status], cancels=[asked, submitted], api_name="stop")
    citations.change(show_fn, [citations], [card], api_name="show_citation")
    ev_up.click(ev_up_fn, [citations, last], [status, card], api_name="evidence_up")
    ev_down.click(ev_down_fn, [citations, last], [status, card], api_name="evidence_down")
    up.click(up_fn, [last], [status], api_name="answer_up")
    down.click(down_fn, [last], [status], api_name="answer_down")
    refresh.click(threads_fn, [overrides], [threads], api_name="list_threads")
    threads.input(
        open_fn, [threads, overrides], [chatbot, thread, reasoning, citations, last, status], api_name="open_thread"
    )
