"""``hopmem ui``: serve the Gradio app (:mod:`hopmem.ui`), on loopback by default, behind a login elsewhere.

The command checks its options, then replaces this process with ``python -m hopmem.ui`` (same pid, signals and exit
status), so that nothing in ``hopmem.app`` imports the UI (the project's dependency rule: nothing imports ``app`` or
``ui``). The global options (``--data-dir``, ``--tenant``, ``--llm-backend``) reach it as ``HOPMEM_*`` variables.
The login (API keys of ``hopmem keys`` or ``HOPMEM_UI_PASSWORD``) is the UI's own (:mod:`hopmem.ui.login`).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from hopmem.app.common import settings as _settings


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
    config = _settings()  # the global options, passed on below; the UI refuses a host without a login itself
    env = dict(os.environ)
    env.update(HOPMEM_DATA_DIR=str(config.data_dir), HOPMEM_TENANT=config.tenant, HOPMEM_LLM_BACKEND=config.llm_backend)
    argv = [sys.executable, "-m", "hopmem.ui", "--host", host, "--port", str(port)]
    argv += ["--require-login"] if require_login else []
    argv += ["--open"] if open_browser else []
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
