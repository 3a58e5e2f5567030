"""``hopmem ui``: serve the Gradio app (:mod:`hopmem.ui`), on loopback by default, behind a login elsewhere.

The login is built here, from the API keys of ``hopmem serve`` (:mod:`hopmem.app.server.keys`) and the password in
``HOPMEM_UI_PASSWORD``, so that the UI itself holds no key store: a key logs in with its id as the username and the
whole key as the password, and the session acts as the key's tenant and agent; the password logs in (any username
that is no key id) as the user of the configured tenant. A revoked key stops working at its session's next action.
"""

from __future__ import annotations

import hmac
import os
from typing import TYPE_CHECKING, Annotated

import typer

from hopmem.app.common import settings as _settings
from hopmem.memory.errors import ConfigError

if TYPE_CHECKING:
    from hopmem import Settings
    from hopmem.ui.identity import Login

PASSWORD_VARIABLE = "HOPMEM_UI_PASSWORD"


def build_login(settings: Settings, password: str | None) -> Login | None:
    """The UI's login from the key file and ``password``; None when neither exists."""
    from hopmem.app.server.factory import key_path
    from hopmem.app.server.keys import KeyStore
    from hopmem.ui.identity import Identity, Login

    keys = KeyStore(key_path(settings))
    if keys.active_count() == 0 and not password:
        return None

    def known(username: str) -> dict[str, object] | None:
        found = next((k for k in keys.list() if k.id == username), None)
        return None if found is None else found.to_dict()

    def check(username: str, secret: str) -> bool:
        info = keys.verify(secret)
        if info is not None:
            return info.id == username
        if password and known(username) is None:
            return hmac.compare_digest(secret.encode(), password.encode())
        return False

    def identity(username: str) -> Identity | None:
        key = known(username)
        if key is not None:
            agent = str(key["agent"]) if key["agent"] else None
            return None if key["revoked_at"] else Identity(str(key["tenant"]), agent)
        return Identity(settings.tenant, None) if password else None

    hint = "API key: its id (hopmem keys list) as username, the whole key as password."
    if password:
        hint += f" Or any other username with the UI password ({PASSWORD_VARIABLE})."
    return Login(check=check, identity=identity, hint=hint)


def ui(
    host: Annotated[
        str, typer.Option(help="address to bind; anything but loopback requires API keys or a password")
    ] = ("127.0.0.1"),
    port: Annotated[int, typer.Option(min=1, max=65535, help="port")] = 7860,
    require_login: Annotated[
        bool, typer.Option("--require-login", help="ask for a key or the password on loopback too")
    ] = False,
    open_browser: Annotated[bool, typer.Option("--open", help="open the app in the default browser")] = False,
) -> None:
    """Serve the Gradio app: chat with streamed answers and visible reasoning, documents, memory browser, settings.

    On loopback every visitor is the user of the configured tenant. On any other address (or with
    --require-login) a visitor logs in with an API key of hopmem serve (each sees its key's tenant) or with the
    password in HOPMEM_UI_PASSWORD; without either the UI refuses to start. Gradio's public share link is never used.
    """
    from hopmem.ui.launcher import is_loopback, launch

    config = _settings()
    login = None
    if require_login or not is_loopback(host):
        login = build_login(config, os.environ.get(PASSWORD_VARIABLE) or None)
        if login is None:
            raise ConfigError(
                f"Refusing to serve the UI on {host} without a login; create an API key (hopmem keys create "
                f"--tenant T) or set {PASSWORD_VARIABLE}, or bind to 127.0.0.1."
            )
    typer.echo(f"hopmem UI on http://{host}:{port} ({'login required' if login else 'no login: loopback'})", err=True)
    launch(config, host=host, port=port, login=login, open_browser=open_browser)
