"""``python -m hopmem.ui``: what ``hopmem ui`` runs (it replaces its own process with this one).

The UI is started as its own program so that no other part of hopmem imports it (the dependency rule of the
project's design); the settings come from ``HOPMEM_*`` variables and the TOML file, as for every command.
"""

from __future__ import annotations

import argparse
import os
import sys

from hopmem import ConfigError, HopmemError
from hopmem.settings import get_settings
from hopmem.ui.launcher import is_loopback, launch
from hopmem.ui.login import PASSWORD_VARIABLE, build_login, refusal


def main(argv: list[str] | None = None) -> int:
    """Serve the app; returns the exit status (a refusal or bad settings: one ``error:`` line)."""
    parser = argparse.ArgumentParser(prog="hopmem ui", description="Serve hopmem's Gradio app.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=7860, help="port")
    parser.add_argument("--require-login", action="store_true", help="ask for a key or the password on loopback too")
    parser.add_argument("--open", dest="open_browser", action="store_true", help="open the app in the browser")
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        login = None
        if args.require_login or not is_loopback(args.host):
            login = build_login(settings, os.environ.get(PASSWORD_VARIABLE) or None)
            if login is None:
                raise ConfigError(refusal(args.host))
        mode = "login required" if login else "no login: loopback"
        print(f"hopmem UI on http://{args.host}:{args.port} ({mode})", file=sys.stderr, flush=True)
        launch(settings, host=args.host, port=args.port, login=login, open_browser=args.open_browser)
    except HopmemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
