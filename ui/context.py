"""What every tab of the app shares: the settings it started with, the open handles, the login, and how an
event's request becomes an identity and an exception becomes one sentence for the user."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hopmem.ui.identity import Identity, Login
from hopmem.ui.sessions import Handles

if TYPE_CHECKING:
    import gradio as gr

    from hopmem import Settings

log = logging.getLogger(__name__)


class NotSignedIn(Exception):
    """The session has no identity (its login no longer holds); every action says so and does nothing."""


@dataclass
class UIContext:
    """The app's shared state.

    Attributes:
        settings: what ``hopmem ui`` started with (a session's Settings tab changes only its own agent).
        login: the login beyond loopback, or None (every session is the user of ``settings.tenant``).
        handles: the open memories and agents.
        max_upload_bytes: larger uploads are refused before anything is read.
    """

    settings: Settings
    login: Login | None = None
    handles: Handles = field(init=False)
    max_upload_bytes: int = 0

    def __post_init__(self) -> None:
        self.handles = Handles(self.settings)
        self._runs: dict[str, threading.Event] = {}
        self._runs_lock = threading.Lock()
        if not self.max_upload_bytes:
            self.max_upload_bytes = self.settings.max_file_bytes

    def new_run(self, session: str | None) -> threading.Event:
        """The stop flag of a new answer of browser session ``session`` (a Stop press sets it)."""
        event = threading.Event()
        if session:
            with self._runs_lock:
                self._runs[session] = event
        return event

    def stop_run(self, session: str | None) -> bool:
        """Stop the running answer of ``session``; False when none runs."""
        with self._runs_lock:
            event = self._runs.pop(session, None) if session else None
        if event is None or event.is_set():
            return False
        event.set()
        return True

    def who(self, request: gr.Request | None) -> Identity:
        """The identity of the session that sent ``request``.

        Raises:
            NotSignedIn: behind a login, when the request carries no user or the login no longer holds.
        """
        if self.login is None:
            return Identity(self.settings.tenant, None)
        username = getattr(request, "username", None) if request is not None else None
        found = self.login.identity(username) if username else None
        if found is None:
            raise NotSignedIn("This session is not signed in (or its key was revoked); reload the page and log in.")
        return found


def explain(exc: BaseException) -> str:
    """One sentence for the user: a hopmem error's own message, else the kind of failure and where to look."""
    from hopmem import HopmemError

    if isinstance(exc, HopmemError | NotSignedIn):
        return str(exc)
    log.exception("the UI action failed")
    return f"Something went wrong ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); see the server log."
