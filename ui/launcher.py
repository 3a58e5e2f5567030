"""Start the app: loopback by default, never shared through gradio's tunnel, and behind a login elsewhere."""

from __future__ import annotations

import ipaddress
import logging
import os
from typing import TYPE_CHECKING

from hopmem.ui.context import UIContext
from hopmem.ui.identity import Login
from hopmem.ui.login import refusal

if TYPE_CHECKING:
    from hopmem import Settings

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_gradio() -> None:
    """Import gradio, or fail with one sentence naming the extra that installs it."""
    from hopmem import ConfigError

    # Local first: no usage statistics leave the machine (gradio sends them unless told not to).
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError as exc:
        raise ConfigError("The UI needs gradio; install it with: pip install 'hopmem[ui]'.") from exc


def launch(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    login: Login | None = None,
    open_browser: bool = False,
) -> None:
    """Serve the app until interrupted.

    Raises:
        ConfigError: on an address other than loopback without a ``login`` (the caller builds it from API keys or
            a password), or without gradio.
    """
    from hopmem import ConfigError

    if not is_loopback(host) and login is None:
        raise ConfigError(refusal(host))
    require_gradio()
    from hopmem.ui.app import CSS, build_app

    ctx = UIContext(settings, login=login)
    app = build_app(ctx)
    try:
        app.queue(default_concurrency_limit=4).launch(
            server_name=host,
            server_port=port,
            share=False,
            inbrowser=open_browser,
            auth=login.check if login else None,
            auth_message=login.hint if login else None,
            max_file_size=ctx.max_upload_bytes,
            show_error=False,
            footer_links=["api"],
            css=CSS,
            quiet=True,
        )
    finally:
        ctx.handles.close()
