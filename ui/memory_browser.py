"""The Memory tab: search or list memories by agent, source class, trust and time; a memory's card with its
provenance chain; erase with a confirmation; the quarantine with approve and reject; trust per agent over time.

All of it is the SDK's: ``Memory.search`` (with a query) or ``Memory.browse`` (without), ``get`` and
``memory_trust``, ``erase``, ``quarantine`` / ``approve`` / ``reject`` (the engine allows review to the user only),
``trust_of`` and ``trust_history``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd

from hopmem.ui import render
from hopmem.ui.context import UIContext, explain

SOURCE_CLASSES = ["any", "document", "user", "agent", "conversation", "tool", "external", "untrusted"]
QUARANTINE_HEADERS = ["id", "agent", "reason", "held since", "text", "contradicts", "group"]


def find_memories(
    query: str,
    agent: str,
    source_class: str,
    min_trust: float,
    days: float,
    ctx: UIContext,
    request: gr.Request | None,
) -> tuple[Any, str]:
    """The memory table for the filters: a search when ``query`` is given, else the newest memories."""
    agent_id = (agent or "").strip() or None
    classes = None if source_class in ("", "any", None) else source_class
    since = time.time() - float(days) * 86_400 if days and float(days) > 0 else None
    floor = float(min_trust) if min_trust and float(min_trust) > 0 else None
    try:
        with ctx.handles.memory(ctx.who(request)) as memory:
            if (query or "").strip():
                hits = memory.search(query, k=50, agent=agent_id, source_class=classes, since=since)
                pairs = [(h.record, h.trust if h.trust is not None else None) for h in hits]
                missing = [r.id for r, t in pairs if t is None]
                trusts = memory.memory_trust(missing) if missing else {}
                pairs = [(r, t if t is not None else trusts.get(r.id)) for r, t in pairs]
                if floor is not None:
                    pairs = [(r, t) for r, t in pairs if t is not None and t >= floor]
            else:
                listed = memory.browse(agent=agent_id, source_class=classes, since=since, min_trust=floor, limit=100)
                pairs = [(r, t) for r, t in listed]
    except Exception as exc:
        return gr.skip(), f"⚠ {explain(exc)}"
    how = f"matching {query.strip()!r}" if (query or "").strip() else "newest first"
    return gr.update(value=render.memory_rows(pairs)), f"{len(pairs)} memories, {how}."


def show_memory(memory_id: float | None, ctx: UIContext, request: gr.Request | None) -> str:
    """A memory's card: text, source, class, writer, trust and provenance chain."""
    if memory_id is None or int(memory_id) <= 0:
        return ""
    try:
        with ctx.handles.memory(ctx.who(request)) as memory:
            record = memory.get(int(memory_id))
            trust = memory.memory_trust([record.id]).get(record.id)
    except Exception as exc:
        return f"⚠ {explain(exc)}"
    return render.memory_card(record, trust)


def erase_memory(memory_id: float | None, ctx: UIContext, request: gr.Request | None) -> str:
    """Erase one memory everywhere (after the confirmation in the UI)."""
    if memory_id is None or int(memory_id) <= 0:
        return "Pick a memory first (click a row or type its id)."
    try:
        with ctx.handles.memory(ctx.who(request)) as memory:
            memory.get(int(memory_id))
            report = memory.erase([int(memory_id)])
    except Exception as exc:
        return f"⚠ {explain(exc)}"
    return (
        f"Erased memory #{int(memory_id)}: {report.memories} memory, {report.vectors} vectors, "
        f"{report.feedback} feedback events, {report.threads} conversations that quoted it."
    )


def list_quarantine(ctx: UIContext, request: gr.Request | None) -> tuple[Any, str]:
    """The writes held for review."""
    try:
        with ctx.handles.memory(ctx.who(request)) as memory:
            held = memory.quarantine()
    except Exception as exc:
        return gr.skip(), f"⚠ {explain(exc)}"
    rows = [
        [
            h["id"],
            h.get("agent") or "",
            h.get("reason") or "",
            render.when(h.get("at")),
            " ".join(f"{h.get('title') or ''} {h.get('content', '')}".split())[:200],
            _conflict(h.get("conflicts_with")),
            "" if h.get("group") in (None, h["id"]) else f"near-duplicate of #{h['group']}",
        ]
        for h in held
    ]
    return gr.update(value=rows), f"{len(held)} writes held for review."


def _conflict(other: dict[str, Any] | None) -> str:
    """The memory a held write contradicts, shown beside it: approving the held one says this one is wrong."""
    if not other:
        return ""
    return f"#{other['id']}: " + " ".join(str(other["content"]).split())[:200]


def review(memory_id: float | None, verdict: str, ctx: UIContext, request: gr.Request | None) -> str:
    """Approve (release) or reject (erase) one quarantined write; only the user may."""
    if memory_id is None or int(memory_id) <= 0:
        return "Pick a held write first (click a row or type its id)."
    try:
        with ctx.handles.memory(ctx.who(request)) as memory:
            if verdict == "approve":
                memory.approve([int(memory_id)])
                return f"Approved #{int(memory_id)}: it is visible to search and answers now."
            report = memory.reject([int(memory_id)])
            return f"Rejected #{int(memory_id)}: erased ({report.memories} memory)."
    except Exception as exc:
        return f"⚠ {explain(exc)}"


def trust_plot(ctx: UIContext, request: gr.Request | None) -> tuple[Any, str]:
    """Trust per agent over time: each agent's trust after each signal about it, and its trust now.

    An agent without signals has kept its prior all along: it is drawn flat from the plot's first time to now.
    """
    rows: list[dict[str, Any]] = []
    now = time.time()
    try:
        with ctx.handles.memory(ctx.who(request)) as memory:
            agents = memory.trust_of()
            for agent in agents:
                for event in memory.trust_history(agent.agent, limit=200):
                    rows.append({"time": float(event["at"]), "trust": float(event["trust"]), "agent": agent.agent})
                rows.append({"time": now, "trust": agent.mean, "agent": agent.agent})
    except Exception as exc:
        return gr.skip(), f"⚠ {explain(exc)}"
    start = min((r["time"] for r in rows if r["time"] < now), default=now - 3600)
    for agent in agents:
        if sum(1 for r in rows if r["agent"] == agent.agent) < 2:
            rows.append({"time": start, "trust": agent.mean, "agent": agent.agent})
    table = "\n".join(f"- **{a.agent}**: {a.mean:.3f} after {a.signals} signals" for a in agents)
    frame = pd.DataFrame(rows, columns=["time", "trust", "agent"]).sort_values("time")
    frame["time"] = pd.to_datetime(frame["time"], unit="s")
    return frame, table or "No agent has written anything yet."


def build(ctx: UIContext) -> tuple[Callable[..., Any], list[Any]]:
    """Lay out the Memory tab and wire its events; returns (the quarantine loader, its outputs) for the tab's select."""
    with gr.Row():
        query = gr.Textbox(label="Search (empty: newest)", elem_id="mem-query", scale=3)
        agent = gr.Textbox(label="Agent", scale=1, elem_id="mem-agent")
        source_class = gr.Dropdown(label="Source class", choices=SOURCE_CLASSES, value="any", scale=1)
        min_trust = gr.Slider(0, 1, value=0, step=0.05, label="Trust at least", scale=1)
        days = gr.Number(label="Last N days (0: all)", value=0, minimum=0, scale=1)
    find = gr.Button("Find", variant="primary", elem_id="mem-find")
    found = gr.Markdown(elem_id="mem-found")
    table = gr.Dataframe(headers=render.MEMORY_HEADERS, interactive=False, wrap=True, elem_id="mem-table")
    with gr.Row():
        picked = gr.Number(label="Memory id", precision=0, elem_id="mem-id", scale=1)
        show = gr.Button("Show", scale=1, elem_id="mem-show")
        erase = gr.Button("Erase…", variant="stop", scale=1, elem_id="mem-erase")
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown()
        confirm = gr.Button("Yes, erase it everywhere", variant="stop", elem_id="mem-erase-confirm")
        cancel = gr.Button("Cancel", elem_id="mem-erase-cancel")
    erased = gr.Markdown(elem_id="mem-erased")
    card = gr.Markdown(elem_id="mem-card")

    gr.Markdown("#### Quarantine (writes held for review)")
    q_refresh = gr.Button("↻ Quarantine", elem_id="q-refresh")
    q_summary = gr.Markdown(elem_id="q-summary")
    q_table = gr.Dataframe(headers=QUARANTINE_HEADERS, interactive=False, wrap=True, elem_id="q-table")
    with gr.Row():
        q_pick = gr.Number(label="Held id", precision=0, elem_id="q-id")
        approve = gr.Button("Approve", variant="primary", elem_id="q-approve")
        reject = gr.Button("Reject", variant="stop", elem_id="q-reject")
    q_done = gr.Markdown(elem_id="q-done")

    gr.Markdown("#### Trust per agent over time")
    t_refresh = gr.Button("↻ Trust", elem_id="trust-refresh")
    plot = gr.LinePlot(x="time", y="trust", color="agent", y_lim=[0, 1], height=260, elem_id="trust-plot")
    t_table = gr.Markdown(elem_id="trust-table")

    def find_fn(q: str, a: str, c: str, m: float, d: float, request: gr.Request) -> tuple[Any, str]:
        return find_memories(q, a, c, m, d, ctx, request)

    def pick_fn(evt: gr.SelectData) -> Any:
        row = evt.row_value if evt is not None else None
        return int(row[0]) if row else gr.skip()

    def show_fn(mid: float | None, request: gr.Request) -> str:
        return show_memory(mid, ctx, request)

    def ask_confirm(mid: float | None) -> tuple[Any, str]:
        if mid is None or int(mid) <= 0:
            return gr.update(visible=False), "Pick a memory first (click a row or type its id)."
        return gr.update(visible=True), f"Erase memory **#{int(mid)}** everywhere, for good?"

    def erase_fn(mid: float | None, request: gr.Request) -> tuple[Any, str]:
        return gr.update(visible=False), erase_memory(mid, ctx, request)

    def quarantine_fn(request: gr.Request) -> tuple[Any, str]:
        return list_quarantine(ctx, request)

    def approve_fn(mid: float | None, request: gr.Request) -> str:
        return review(mid, "approve", ctx, request)

    def reject_fn(mid: float | None, request: gr.Request) -> str:
        return review(mid, "reject", ctx, request)

    def trust_fn(request: gr.Request) -> tuple[Any, str]:
        return trust_plot(ctx, request)

    find.click(find_fn, [query, agent, source_class, min_trust, days], [table, found], api_name="find_memories")
    query.submit(find_fn, [query, agent, source_class, min_trust, days], [table, found], api_visibility="private")
    table.select(pick_fn, None, [picked], api_visibility="private").then(
        show_fn, [picked], [card], api_visibility="private"
    )
    show.click(show_fn, [picked], [card], api_name="show_memory")
    erase.click(ask_confirm, [picked], [confirm_row, confirm_text], api_visibility="private")
    cancel.click(
        lambda: (gr.update(visible=False), "Nothing was erased."), None, [confirm_row, erased], api_visibility="private"
    )
    confirm.click(erase_fn, [picked], [confirm_row, erased], api_name="erase_memory").then(
        find_fn, [query, agent, source_class, min_trust, days], [table, found], api_visibility="private"
    )
    q_refresh.click(quarantine_fn, None, [q_table, q_summary], api_name="list_quarantine")
    q_table.select(pick_fn, None, [q_pick], api_visibility="private")
    approve.click(approve_fn, [q_pick], [q_done], api_name="approve").then(
        quarantine_fn, None, [q_table, q_summary], api_visibility="private"
    )
    reject.click(reject_fn, [q_pick], [q_done], api_name="reject").then(
        quarantine_fn, None, [q_table, q_summary], api_visibility="private"
    )
    t_refresh.click(trust_fn, None, [plot, t_table], api_name="trust_plot")
    return quarantine_fn, [q_table, q_summary]
