"""The Settings tab: what this browser session changes for itself (LLM backend and model, an OpenAI-compatible URL
such as vLLM's, reranker, hops, decomposition, top-k) and the settings in effect.

The changes live in the session (a ``gr.State``), are validated as :class:`hopmem.Settings` are, and give the
session its own agent (:mod:`hopmem.ui.sessions`); the store, tenant and trust rules stay the server's.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from hopmem.ui.context import UIContext, explain
from hopmem.ui.sessions import SESSION_SETTINGS, session_settings

LLM_BACKENDS = ["llamacpp", "openai", "transformers", "none"]
RERANKERS = ["cross-encoder", "prorank", "prorank-base", "rank-r1", "none"]


def effective(ctx: UIContext, overrides: dict[str, Any] | None) -> str:
    """The settings in effect for this session, as Markdown (the session's own values marked)."""
    settings = session_settings(ctx.settings, overrides)
    data = settings.effective()
    lines = ["| setting | value |", "|---|---|"]
    for name in SESSION_SETTINGS:
        mark = " (this session)" if name in (overrides or {}) else ""
        lines.append(f"| `{name}` | `{data[name]}`{mark} |")
    rest = {k: v for k, v in data.items() if k not in SESSION_SETTINGS}
    lines.append("")
    lines.append("<details><summary>all other settings (the server's)</summary>\n\n```json\n")
    lines.append(json.dumps(rest, indent=1, default=str))
    lines.append("```\n</details>")
    return "\n".join(lines)


def apply(
    llm_backend: str,
    llm_model: str,
    llm_base_url: str,
    reranker: str,
    treehop_hops: float,
    decompose: bool,
    top_k: float,
    ctx: UIContext,
) -> tuple[Any, str, str]:
    """Validate and keep this session's settings; returns (new session state, settings in effect, status)."""
    wanted = {
        "llm_backend": llm_backend,
        "llm_model": (llm_model or "").strip(),
        "llm_base_url": (llm_base_url or "").strip(),
        "reranker": reranker,
        "treehop_hops": int(treehop_hops),
        "decompose": bool(decompose),
        "top_k": int(top_k),
    }
    base = ctx.settings.model_dump()
    overrides = {k: v for k, v in wanted.items() if v != base[k]}
    try:
        session_settings(ctx.settings, overrides)
    except Exception as exc:
        return gr.skip(), gr.skip(), f"⚠ {explain(exc)}"
    return overrides, effective(ctx, overrides), f"Applied: {', '.join(sorted(overrides)) or 'the defaults'}."


def build(ctx: UIContext, overrides: gr.State) -> None:
    """Lay out the Settings tab and wire its events."""
    s = ctx.settings
    with gr.Row():
        backend = gr.Dropdown(LLM_BACKENDS, value=s.llm_backend, label="LLM backend", elem_id="set-llm-backend")
        model = gr.Textbox(value=s.llm_model, label="LLM model (GGUF name/path, or the server's model name)")
        base_url = gr.Textbox(
            value=s.llm_base_url, label="OpenAI-compatible URL (vLLM, llama.cpp server)", elem_id="set-llm-url"
        )
    with gr.Row():
        reranker = gr.Dropdown(RERANKERS, value=s.reranker, label="Reranker")
        hops = gr.Slider(1, 4, value=s.treehop_hops, step=1, label="TreeHop hops (1: none)")
        decompose = gr.Checkbox(value=s.decompose, label="Decompose questions")
        top_k = gr.Slider(1, 10, value=s.top_k, step=1, label="Evidence passages (top-k)")
    save = gr.Button("Apply to this session", variant="primary", elem_id="set-apply")
    status = gr.Markdown(elem_id="set-status")
    shown = gr.Markdown(effective(ctx, {}), elem_id="set-effective")

    def apply_fn(b: str, m: str, u: str, r: str, h: float, d: bool, k: float) -> tuple[Any, str, str]:
        return apply(b, m, u, r, h, d, k, ctx)

    save.click(
        apply_fn,
        [backend, model, base_url, reranker, hops, decompose, top_k],
        [overrides, shown, status],
        api_name="apply_settings",
    )
