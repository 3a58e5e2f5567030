"""``hopmem memory ...``: write, read, search, erase and reindex memories from the shell."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from hopmem.app.common import echo_json, parse_time, settings
from hopmem.memory.errors import InputError

memory_app = typer.Typer(help="Write, search, inspect and erase memories.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Review the writes held by the trust gate.", no_args_is_help=True)
memory_app.add_typer(quarantine_app, name="quarantine")

_AGENT = typer.Option("--agent", help="only memories written by this agent")
_TAG = typer.Option("--tag", help="only memories with this tag (repeat for any of several)")
_CLASS = typer.Option("--source-class", help="only this source class (repeatable)")
_SINCE = typer.Option("--since", help="created at or after (Unix seconds or ISO date)")
_UNTIL = typer.Option("--until", help="created at or before (Unix seconds or ISO date)")


def _memory() -> Any:
    from hopmem.memory_api import Memory

    return Memory(settings())


def _line(record: Any, score: float | None = None) -> str:
    text = " ".join(record.content.split())
    head = f"[{record.id}] " + (f"{record.title}: " if record.title else "")
    tail = f" ({score:.4f})" if score is not None else ""
    return f"{head}{text[:110]}{'...' if len(text) > 110 else ''}{tail}"


@memory_app.command("add")
def add(
    content: Annotated[str, typer.Argument(help="the text to remember ('-' reads standard input)")],
    title: Annotated[str | None, typer.Option(help="a short title")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="a tag (repeatable)")] = None,
    metadata: Annotated[str | None, typer.Option(help="a JSON object stored with the memory")] = None,
    agent: Annotated[str | None, typer.Option(help="the writing agent's id")] = None,
    source_class: Annotated[str, typer.Option(help="user, agent, conversation, tool or external")] = "user",
    importance: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Remember a piece of text (the same text twice is stored once)."""
    if content == "-":
        import sys

        content = sys.stdin.read()
    meta: Any = None
    if metadata is not None:
        try:
            meta = json.loads(metadata)
        except json.JSONDecodeError as exc:
            raise InputError(f"--metadata is not valid JSON ({exc.msg}); pass an object like '{{\"k\": 1}}'.") from exc
    with _memory() as memory:
        record = memory.add(
            content,
            title=title,
            tags=tag,
            metadata=meta,
            agent=agent,
            source_class=source_class,
            importance=importance,
        )
    echo_json(record.to_dict()) if as_json else typer.echo(f"stored memory {record.id}")


@memory_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    mode: Annotated[str, typer.Option(help="lexical, dense or hybrid")] = "hybrid",
    k: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    agent: Annotated[str | None, _AGENT] = None,
    tag: Annotated[list[str] | None, _TAG] = None,
    source_class: Annotated[list[str] | None, _CLASS] = None,
    since: Annotated[str | None, _SINCE] = None,
    until: Annotated[str | None, _UNTIL] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Search memories (and ingested chunks) with optional filters."""
    with _memory() as memory:
        results = memory.search(
            query,
            k=k,
            mode=mode,
            agent=agent,
            tags=tag,
            source_class=source_class,
            since=parse_time(since, "--since"),
            until=parse_time(until, "--until"),
        )
    if as_json:
        echo_json([r.to_dict() for r in results])
        return
    if not results:
        typer.echo("no match")
    for rank, r in enumerate(results, start=1):
        typer.echo(f"{rank:>3}. {_line(r.record, r.score)}")


@memory_app.command("get")
def get(
    memory_id: Annotated[int, typer.Argument(help="the memory id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one memory with its provenance chain."""
    with _memory() as memory:
        record = memory.get(memory_id)
    if as_json:
        echo_json(record.to_dict())
        return
    typer.echo(_line(record))
    typer.echo(f"source class: {record.source_class}  agent: {record.agent_id or '-'}  tags: {', '.join(record.tags)}")
    for event in record.provenance:
        typer.echo(f"  {event}")


@memory_app.command("erase")
def erase(
    ids: Annotated[list[int] | None, typer.Argument(help="memory ids to erase")] = None,
    agent: Annotated[str | None, _AGENT] = None,
    tag: Annotated[list[str] | None, _TAG] = None,
    source_class: Annotated[list[str] | None, _CLASS] = None,
    since: Annotated[str | None, _SINCE] = None,
    until: Annotated[str | None, _UNTIL] = None,
    everything: Annotated[bool, typer.Option("--all", help="erase the whole tenant")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Erase memories everywhere: rows, search indexes, vectors, feedback, conversations, file pages."""
    if everything and not yes:
        typer.confirm("Erase everything this tenant stored?", abort=True)
    with _memory() as memory:
        report = memory.erase(
            ids or None,
            agent=agent,
            tags=tag,
            source_class=source_class,
            since=parse_time(since, "--since"),
            until=parse_time(until, "--until"),
            everything=everything,
        )
    if as_json:
        echo_json(report.to_dict())
        return
    typer.echo(
        f"erased {report.memories} memories, {report.documents} documents, {report.vectors} vectors, "
        f"{report.feedback} feedback events, {report.threads} conversations"
        + ("" if report.files_scrubbed else " (another process holds the files: scrubbed at its next checkpoint)")
    )


@memory_app.command("feedback")
def feedback(
    memory_id: Annotated[int, typer.Argument(help="the memory id")],
    kind: Annotated[str, typer.Argument(help="up, down or click")] = "up",
    query: Annotated[str | None, typer.Option(help="the query the memory answered")] = None,
) -> None:
    """Record feedback on a memory (kept in the behavioural file)."""
    with _memory() as memory:
        memory.feedback(memory_id, kind, query=query)
    typer.echo(f"recorded {kind} on memory {memory_id}")


@memory_app.command("stats")
def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Counts of what the tenant holds."""
    with _memory() as memory:
        data = memory.stats()
    echo_json(data) if as_json else typer.echo("\n".join(f"{k}: {v}" for k, v in data.items()))


@memory_app.command("export")
def export() -> None:
    """Print every memory of the tenant as JSON lines."""
    with _memory() as memory:
        for record in memory.export():
            typer.echo(json.dumps(record.to_dict(), ensure_ascii=False))


@memory_app.command("reindex")
def reindex() -> None:
    """Rebuild the vector index of the configured backend from SQLite."""
    with _memory() as memory:
        count = memory.reindex()
        backend = memory.settings.vector_backend
    typer.echo(f"rebuilt the {backend} index: {count} vectors")


@quarantine_app.command("list")
def quarantine_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The held writes, oldest first, with the writing agent and why they were held."""
    with _memory() as memory:
        held = memory.quarantine()
    if as_json:
        echo_json(held)
        return
    if not held:
        typer.echo("the quarantine is empty")
    for entry in held:
        text = " ".join(entry["content"].split())
        typer.echo(f"[{entry['id']}] {entry['agent'] or '-'}: {text[:100]}{'...' if len(text) > 100 else ''}")
        typer.echo(f"      held: {entry['reason']}")
        if entry.get("conflicts_with"):
            other = " ".join(entry["conflicts_with"]["content"].split())
            typer.echo(f"      vs [{entry['conflicts_with']['id']}]: {other[:100]}{'...' if len(other) > 100 else ''}")
        if entry.get("group") not in (None, entry["id"]):
            typer.echo(f"      near-duplicate of [{entry['group']}] by the same agent: review them together")


@quarantine_app.command("approve")
def quarantine_approve(
    ids: Annotated[list[int], typer.Argument(help="quarantined memory ids")],
    note: Annotated[str | None, typer.Option(help="why (kept in the provenance chain)")] = None,
) -> None:
    """Release held writes: they become visible to search and the agent."""
    with _memory() as memory:
        done = memory.approve(ids, note=note)
    typer.echo(f"approved {len(done)} memories: {', '.join(map(str, done))}")


@quarantine_app.command("reject")
def quarantine_reject(ids: Annotated[list[int], typer.Argument(help="quarantined memory ids")]) -> None:
    """Erase held writes for good (the full erase path) and count it against their writers."""
    with _memory() as memory:
        report = memory.reject(ids)
    typer.echo(f"rejected and erased {report.memories} memories")
