"""``hopmem trust ...``: how far the memory trusts each writing agent, and why (the signals that moved it)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from hopmem.app.common import echo_json, settings

trust_app = typer.Typer(help="Show the trust of writing agents and its history.", no_args_is_help=True)


def _memory() -> Any:
    from hopmem.memory_api import Memory

    return Memory(settings())


@trust_app.command("show")
def show(
    agent: Annotated[str | None, typer.Argument(help="one agent (default: every agent of the tenant)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Each agent's trust (Beta mean), its alpha/beta and signal count; below the threshold its writes are held."""
    with _memory() as memory:
        agents = memory.trust_of(agent)
        threshold = memory.settings.trust_threshold
    if as_json:
        echo_json({"threshold": threshold, "agents": [a.to_dict() for a in agents]})
        return
    if not agents:
        typer.echo("no agents yet")
        return
    typer.echo(f"{'agent':<24} {'trust':>6} {'alpha':>7} {'beta':>7} {'signals':>7}  gate")
    for a in agents:
        gate = "quarantined" if a.mean < threshold else "writes"
        typer.echo(f"{a.agent:<24} {a.mean:>6.3f} {a.alpha:>7.2f} {a.beta:>7.2f} {a.signals:>7}  {gate}")


@trust_app.command("history")
def history(
    agent: Annotated[str, typer.Argument(help="the agent")],
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="latest signals to show")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The latest trust signals about AGENT, oldest first, with the trust after each."""
    with _memory() as memory:
        events = memory.trust_history(agent, limit=limit)
    if as_json:
        echo_json(events)
        return
    if not events:
        typer.echo(f"no signals about {agent}")
    for e in events:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["at"]))
        about = f" memory {e['memory_id']}" if e["memory_id"] is not None else ""
        by = f" by {e['by']}" if e["by"] else ""
        typer.echo(f"{when}  {e['kind']:<15} w={e['weight']:<5.2f} -> trust {e['trust']:.3f}{about}{by}")
