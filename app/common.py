"""What every CLI command shares: the global option overrides, settings and JSON output."""

from __future__ import annotations

import json
from typing import Any

import typer

OVERRIDES: dict[str, Any] = {}


def settings(**extra: Any) -> Any:
    """The settings with the global options (and ``extra``) on top."""
    from hopmem.settings import get_settings

    return get_settings(**{**OVERRIDES, **extra})


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def parse_time(value: str | None, option: str) -> float | None:
    """A Unix time from ``value``: seconds, or an ISO 8601 date/time (local time when no zone is given)."""
    if value is None:
        return None
    from datetime import datetime

    from hopmem.memory.errors import InputError

    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as exc:
        raise InputError(f"{option} takes Unix seconds or an ISO date such as 2026-11-23, not {value!r}.") from exc
