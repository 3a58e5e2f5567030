"""Who a UI session acts as, and how a login becomes that identity.

The UI holds no key store of its own: ``hopmem ui`` (in ``hopmem.app``) hands it a :class:`Login` built from the
API keys of ``hopmem serve`` or a password, and the UI only asks it two questions: may this username and password
in (``check``), and which tenant and agent does this username act as (``identity``). Without a login (loopback) every
session is the user of the configured tenant, as the CLI is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """A tenant and the agent a session acts as (None: the tenant's user, who may review quarantined writes)."""

    tenant: str
    agent: str | None = None

    @property
    def label(self) -> str:
        return f"tenant {self.tenant!r} as " + (f"agent {self.agent!r}" if self.agent else "the user")


@dataclass(frozen=True)
class Login:
    """The login of a UI served beyond loopback.

    Attributes:
        check: ``(username, password) -> bool``; gradio calls it on the login form.
        identity: ``username -> Identity``, or None when the login no longer holds (a revoked key): the session
            then gets no memory and each action says so.
        hint: one line for the login form (what to type).
    """

    check: Callable[[str, str], bool]
    identity: Callable[[str], Identity | None]
    hint: str = ""
