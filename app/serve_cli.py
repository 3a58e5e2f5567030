"""``hopmem serve`` and ``hopmem keys ...``: run the HTTP server and manage its API keys."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from hopmem.app.common import OVERRIDES, echo_json, settings
from hopmem.memory.errors import ConfigError

log = logging.getLogger(__name__)
keys_app = typer.Typer(
    help="Create, list and revoke the API keys of hopmem serve (each bound to a tenant and an agent).",
    no_args_is_help=True,
)


def _keys() -> object:
    from hopmem.keys import KeyStore, key_path

    return KeyStore(key_path(settings()))


def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (HOPMEM_SERVER_HOST; default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (HOPMEM_SERVER_PORT; default 8765)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="worker processes (HOPMEM_SERVER_WORKERS)")] = None,
) -> None:
    """Serve the OpenAI-compatible chat endpoint and the memory REST API (docs at /docs).

    On loopback without any key, requests without a key act as the user of the configured tenant; on any other
    address the server refuses to start until a key exists (hopmem keys create).
    """
    import uvicorn

    from hopmem.app.server.factory import is_loopback
    from hopmem.keys import KeyStore, key_path

    extra = {k: v for k, v in (("server_host", host), ("server_port", port), ("server_workers", workers)) if v}
    config = settings(**extra)
    if not is_loopback(config.server_host) and KeyStore(key_path(config)).active_count() == 0:
        raise ConfigError(
            f"Refusing to serve on {config.server_host} without API keys; create one with "
            "hopmem keys create --tenant T, or bind to 127.0.0.1."
        )
    # Every worker builds its app from the environment (uvicorn --factory), so the options travel as variables.
    for name, value in {**OVERRIDES, **extra}.items():
        os.environ[f"HOPMEM_{name.upper()}"] = str(value)
    typer.echo(
        f"hopmem serving on http://{config.server_host}:{config.server_port} ({config.server_workers} worker(s)); "
        f"API docs at /docs",
        err=True,
    )
    uvicorn.run(
        "hopmem.app.server.factory:app_from_env",
        factory=True,
        host=config.server_host,
        port=config.server_port,
        workers=config.server_workers,
        log_level="info" if logging.getLogger().isEnabledFor(logging.INFO) else "warning",
        timeout_graceful_shutdown=10,
    )


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="the tenant the key reads and writes")],
    agent: Annotated[
        str | None, typer.Option(help="the agent the key acts as; omitted: the tenant's user (may review quarantine)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a key and print its secret (shown this once; only its hash is stored)."""
    from hopmem.memory_api import Memory

    Memory(settings(), tenant=tenant, agent=agent).close()  # the engine's checks of the tenant and agent ids
    info, secret = _keys().create(tenant, agent)  # type: ignore[attr-defined]
    if as_json:
        echo_json({**info.to_dict(), "key": secret})
        return
    who = f"agent {info.agent!r}" if info.agent else "the user"
    typer.echo(
        f"created key {info.id} for tenant {info.tenant!r} acting as {who}; keep the secret, it is not shown again:"
    )
    typer.echo(secret)


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the keys (id, tenant, agent, created, revoked); never the secrets."""
    import datetime as dt

    infos = _keys().list()  # type: ignore[attr-defined]
    if as_json:
        echo_json([i.to_dict() for i in infos])
        return
    for i in infos:
        made = dt.datetime.fromtimestamp(i.created_at).isoformat(timespec="seconds")
        state = "revoked" if i.revoked_at else "active"
        typer.echo(f"{i.id}  tenant={i.tenant}  agent={i.agent or '(user)'}  created={made}  {state}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id (hopmem keys list)")]) -> None:
    """Revoke a key; every server worker refuses it from the next request."""
    info = _keys().revoke(key_id)  # type: ignore[attr-defined]
    typer.echo(f"revoked key {info.id} (tenant {info.tenant!r})")
