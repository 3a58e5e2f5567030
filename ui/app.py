"""The Gradio Blocks app: a header naming who the session acts as, and the tabs (Chat with its reasoning view,
Documents, Memory, Settings). Each tab is its own module; this one only lays them out."""

from __future__ import annotations

import gradio as gr

from hopmem.ui import chat, documents, memory_browser, settings_tab
from hopmem.ui.context import UIContext, explain

CSS = """
#reasoning { font-size: 0.9em; max-height: 900px; overflow-y: auto; }
#citation-card, #mem-card { border-left: 3px solid var(--color-accent); padding-left: 0.8em; }
"""


def build_app(ctx: UIContext) -> gr.Blocks:
    """The app over ``ctx`` (settings, handles, login)."""
    with gr.Blocks(title="hopmem") as app:
        header = gr.Markdown("## hopmem", elem_id="header")
        overrides = gr.State({})
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat.build(ctx, overrides)
            with gr.Tab("Documents", id="documents") as documents_tab:
                load_sources, sources_outputs = documents.build(ctx)
            with gr.Tab("Memory", id="memory") as memory_tab:
                load_quarantine, quarantine_outputs = memory_browser.build(ctx)
            with gr.Tab("Settings", id="settings"):
                settings_tab.build(ctx, overrides)
        # A tab shows its lists when it opens (what other sessions changed included).
        documents_tab.select(load_sources, None, sources_outputs, api_visibility="private")
        memory_tab.select(load_quarantine, None, quarantine_outputs, api_visibility="private")

        def whoami(request: gr.Request) -> str:
            try:
                who = ctx.who(request)
            except Exception as exc:
                return f"## hopmem\n⚠ {explain(exc)}"
            with ctx.handles.memory(who) as memory:
                stats = memory.stats()
            return (
                f"## hopmem\nActing for {who.label} · {stats['documents']} documents, {stats['memories']} memories, "
                f"{stats['quarantined']} held for review, {stats.get('feedback', 0)} feedback events"
            )

        app.load(whoami, None, [header], api_name="whoami")
    return app
