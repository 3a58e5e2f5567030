"""The user's corrections of agents' writes as trust signals, recorded with the change itself.

When the user (a handle without an agent) overwrites the content of a memory, or erases it, within
``trust_overwrite_window_s`` of when an agent wrote that text, the user says the agent was wrong: ``user_overwrite``
for the agent of an overwritten text, ``user_delete`` for each agent whose texts an erase removed (weighted by how
many). The hooks made here run inside the update's or the erase's own transaction
(:meth:`hopmem.memory.store.MemoryStore.update_memory`, :meth:`~hopmem.memory.store.MemoryStore.erase_rows`), so the
change and its signal commit together or not at all.

Only a judgement of someone else's text is a correction. The author of a memory's current text is the identity that
made the last provenance event setting it (the ``add``, or an ``update`` of ``content``), and nothing is signalled
when:

* that write was the user's own, including one the user's handle labelled with an agent id (an import on the agent's
  behalf, provenance ``"via": "user"``): the user retracting or rewriting their own write says nothing about the
  agent, just as an agent changing or erasing its own memory says nothing about itself;
* the memory is quarantined (held writes are judged by approval or rejection);
* the text is older than the window.

Events written before the ``via`` mark existed carry none, and count as the agent's own writes.
"""

from __future__ import annotations

import sqlite3

from hopmem.memory.records import MemoryRecord
from hopmem.memory.store import EraseHook, UpdateHook
from hopmem.memory.trust.model import TrustModel

MAX_DETAIL_IDS = 100
"""Memory ids a ``user_delete`` signal lists in its detail."""


def content_author(record: MemoryRecord) -> tuple[str | None, float]:
    """Who wrote ``record``'s current text and when: an agent that wrote it through its own handle, or None when
    the user did (the user's own handle, with or without an agent label) or nobody is named."""
    author, at = record.agent_id, record.created_at
    for event in record.provenance:
        action = event.get("action")
        fields = event.get("fields") or ()
        if action == "add" or (action == "update" and "content" in fields):
            agent = event.get("agent")
            own = isinstance(agent, str) and bool(agent) and event.get("via") != "user"
            author = str(agent) if own else None
            stamp = event.get("at")
            at = float(stamp) if isinstance(stamp, int | float) else at
    return author, at


def fresh_author(record: MemoryRecord, now: float, window_s: float) -> str | None:
    """The agent whose own text ``record`` holds, written within ``window_s`` before ``now`` (None otherwise, and
    for a quarantined memory)."""
    if record.quarantined:
        return None
    author, at = content_author(record)
    if author is None or now - at > window_s:
        return None
    return author


def overwrite_hook(model: TrustModel, tenant: str, new_content: str) -> UpdateHook:
    """The bookkeeping of the user's change of a memory's content to ``new_content`` (see the module docstring)."""

    def book(conn: sqlite3.Connection, before: MemoryRecord, now: float) -> None:
        if before.content == new_content:
            return
        author = fresh_author(before, now, model.params.overwrite_window_s)
        if author is not None:
            model.record(conn, tenant, author, "user_overwrite", memory_id=before.id, now=now)

    return book


def delete_hook(model: TrustModel, tenant: str) -> EraseHook:
    """The bookkeeping of the user's erase of memories (see the module docstring)."""

    def book(conn: sqlite3.Connection, erased: list[MemoryRecord], now: float) -> None:
        fresh: dict[str, list[int]] = {}
        for record in erased:
            author = fresh_author(record, now, model.params.overwrite_window_s)
            if author is not None:
                fresh.setdefault(author, []).append(record.id)
        for author, ids in sorted(fresh.items()):
            model.record(
                conn, tenant, author, "user_delete", scale=len(ids), detail={"ids": ids[:MAX_DETAIL_IDS]}, now=now
            )

    return book
