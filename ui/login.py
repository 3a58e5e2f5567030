"""The UI's login beyond loopback: the API keys of ``hopmem keys`` (:mod:`hopmem.keys`) or a password.

A key logs in with its id as the username and the whole key as the password, and the session acts as the key's
tenant and agent; the password (``HOPMEM_UI_PASSWORD``) logs in, with any username that is no key id, as the user of
the configured tenant. The key file is read on every check, so a key revoked from the CLI stops working at its
session's next action.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from hopmem.keys import KeyStore, key_path
from hopmem.ui.identity import Identity, Login

if TYPE_CHECKING:
    from hopmem import Settings

PASSWORD_VARIABLE = "HOPMEM_UI_PASSWORD"


def login_possible(settings: Settings, password: str | None) -> bool:
    """Whether a login can be built: an active API key exists or a password is set."""
    return bool(password) or KeyStore(key_path(settings)).active_count() > 0


def refusal(host: str) -> str:
    """The one sentence that refuses to serve on ``host`` without a login."""
    return (
        f"Refusing to serve the UI on {host} without a login; create an API key (hopmem keys create --tenant T) "
        f"or set {PASSWORD_VARIABLE}, or bind to 127.0.0.1."
    )


def build_login(settings: Settings, password: str | None) -> Login | None:
    """The UI's login from the key file and ``password``; None when neither exists."""
    if not login_possible(settings, password):
        return None
    keys = KeyStore(key_path(settings))

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
