"""The Documents tab: upload files or a folder (drag and drop), ingest them with a progress bar, list the sources
with their chunk counts, and remove a source after a confirmation.

Uploads are copied into a per-tenant folder under the data directory so that a file keeps its name as its source
(uploading a changed ``notes.md`` again replaces the old one), ingested with ``Memory.ingest``, and deleted once
stored: the chunks live in the store, and removing the source (``Memory.erase_source``) erases them everywhere.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from hopmem.ui import render
from hopmem.ui.context import UIContext, explain

FILE_TYPES = [".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"]
SOURCE_HEADERS = ["source", "title", "chunks", "stored"]


def _upload_dir(ctx: UIContext, tenant: str) -> Path:
    return ctx.settings.data_dir / "uploads" / hashlib.sha256(tenant.encode()).hexdigest()[:16]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._ -]", "_", Path(name).name)[:120] or "upload.txt"


def _paths(files: Any) -> list[Path]:
    """The uploaded paths gradio hands over (a list of paths, of file objects, or one of them)."""
    if not files:
        return []
    items = files if isinstance(files, list) else [files]
    return [Path(getattr(f, "name", None) or str(f)) for f in items]


def ingest_uploads(files: Any, folder: Any, ctx: UIContext, request: gr.Request | None, progress: Any) -> str:
    """Ingest the uploaded files (and a folder's files), one at a time with progress; returns the report."""
    uploads = _paths(files) + _paths(folder)
    if not uploads:
        return "Choose or drop files (or a folder) first."
    lines = []
    totals = {"added": 0, "replaced": 0, "unchanged": 0, "chunks": 0, "failed": 0}
    try:
        who = ctx.who(request)
        target = _upload_dir(ctx, who.tenant)
        with ctx.handles.memory(who) as memory:
            for position, path in enumerate(uploads):
                name = _safe_name(path.name)
                progress((position, len(uploads)), desc=f"ingesting {name}", unit="files")
                size = path.stat().st_size if path.exists() else 0
                if size > ctx.max_upload_bytes:
                    totals["failed"] += 1
                    lines.append(
                        f"- ✗ {name}: {size / 1e6:.1f} MB is above the upload limit of "
                        f"{ctx.max_upload_bytes / 1e6:.1f} MB (HOPMEM_MAX_FILE_BYTES); nothing was stored."
                    )
                    continue
                if Path(name).suffix.lower() not in FILE_TYPES:
                    totals["failed"] += 1
                    lines.append(f"- ✗ {name}: unsupported type; use {' '.join(FILE_TYPES)}.")
                    continue
                target.mkdir(parents=True, exist_ok=True)
                copy = target / name
                shutil.copyfile(path, copy)
                try:
                    report = memory.ingest([copy], progress=False)
                finally:
                    copy.unlink(missing_ok=True)
                for key in ("added", "replaced", "unchanged", "chunks"):
                    totals[key] += getattr(report, key)
                if report.errors:
                    totals["failed"] += 1
                    message = report.errors[0][1].replace(str(copy.resolve()), name).replace(str(copy), name)
                    lines.append(f"- ✗ {name}: {message} Nothing was stored from it.")
                else:
                    state = "new" if report.added else "changed" if report.replaced else "unchanged"
                    lines.append(f"- ✓ {name}: {state}, {report.chunks} chunks")
            progress((len(uploads), len(uploads)), desc="done", unit="files")
    except Exception as exc:
        return f"⚠ {explain(exc)}"
    head = (
        f"Stored {totals['added']} new and {totals['replaced']} changed documents ({totals['chunks']} chunks); "
        f"{totals['unchanged']} unchanged, {totals['failed']} failed."
    )
    return "\n".join([head, *lines])


def list_sources(ctx: UIContext, request: gr.Request | None) -> tuple[Any, Any, str]:
    """The sources table, the removal picker's choices and a one-line summary."""
    try:
        with ctx.handles.memory(ctx.who(request)) as memory:
            sources = memory.sources()
    except Exception as exc:
        return gr.skip(), gr.skip(), f"⚠ {explain(exc)}"
    rows = [[s["source"], s["title"], s["chunks"], render.when(s["created_at"])] for s in sources]
    choices = [(f"{Path(s['source']).name} ({s['chunks']} chunks)", s["source"]) for s in sources]
    summary = f"{len(sources)} sources, {sum(s['chunks'] for s in sources)} chunks."
    return gr.update(value=rows), gr.update(choices=choices, value=None), summary


def remove_source(source: str | None, ctx: UIContext, request: gr.Request | None) -> str:
    """Erase one source everywhere (after the confirmation in the UI); returns what was erased."""
    if not source:
        return "Pick a source to remove first."
    try:
        with ctx.handles.memory(ctx.who(request)) as memory:
            report = memory.erase_source(source)
    except Exception as exc:
        return f"⚠ {explain(exc)}"
    return (
        f"Removed {Path(source).name}: {report.memories} chunks, {report.vectors} vectors, {report.feedback} feedback "
        f"events and {report.threads} conversations that quoted it."
    )


def build(ctx: UIContext) -> tuple[Callable[..., Any], list[Any]]:
    """Lay out the Documents tab and wire its events; returns (the sources loader, its outputs) for the tab's select."""
    with gr.Row():
        files = gr.File(
            label="Files (drop .txt .md .html .pdf .docx)",
            file_count="multiple",
            file_types=FILE_TYPES,
            elem_id="upload-files",
        )
        folder = gr.File(label="…or a folder", file_count="directory", elem_id="upload-folder")
    ingest = gr.Button("Ingest", variant="primary", elem_id="ingest")
    report = gr.Markdown(elem_id="ingest-report")
    gr.Markdown("#### Sources")
    refresh = gr.Button("↻ Sources")
    summary = gr.Markdown()
    table = gr.Dataframe(headers=SOURCE_HEADERS, interactive=False, elem_id="sources", wrap=True)
    with gr.Row():
        pick = gr.Dropdown(
            label="Source to remove", choices=[], elem_id="remove-pick", scale=3, allow_custom_value=True
        )
        remove = gr.Button("Remove…", variant="stop", scale=1, elem_id="remove")
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown()
        confirm = gr.Button("Yes, erase it everywhere", variant="stop", elem_id="remove-confirm")
        cancel = gr.Button("Cancel", elem_id="remove-cancel")
    removed = gr.Markdown(elem_id="remove-report")

    def ingest_fn(f: Any, d: Any, request: gr.Request, progress: gr.Progress = gr.Progress()) -> str:
        return ingest_uploads(f, d, ctx, request, progress)

    def list_fn(request: gr.Request) -> tuple[Any, Any, str]:
        return list_sources(ctx, request)

    def ask_confirm(source: str | None) -> tuple[Any, str]:
        if not source:
            return gr.update(visible=False), "Pick a source to remove first."
        return gr.update(visible=True), f"Erase **{Path(source).name}** and all its chunks, for good?"

    def remove_fn(source: str | None, request: gr.Request) -> tuple[Any, str]:
        return gr.update(visible=False), remove_source(source, ctx, request)

    done = ingest.click(ingest_fn, [files, folder], [report], api_name="ingest")
    done.then(list_fn, None, [table, pick, summary], api_visibility="private")
    refresh.click(list_fn, None, [table, pick, summary], api_name="list_sources")
    remove.click(ask_confirm, [pick], [confirm_row, confirm_text], api_visibility="private")
    cancel.click(
        lambda: (gr.update(visible=False), "Nothing was removed."),
        None,
        [confirm_row, removed],
        api_visibility="private",
    )
    erased = confirm.click(remove_fn, [pick], [confirm_row, removed], api_name="remove_source")
    erased.then(list_fn, None, [table, pick, summary], api_visibility="private")
    return list_fn, [table, pick, summary]
