"""The trace of one run: what each step did and how long it took. Plain JSON-ready dicts.

A step's record also lists the LLM calls made while it ran (``llm_calls``: what each call cost, from
:class:`hopmem.agents.llm.metered.MeteredLLM`), so a slow step can be told apart from a slow generation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_LLM_CALLS: ContextVar[list[dict[str, Any]] | None] = ContextVar("hopmem_llm_calls", default=None)


def record_llm_call(call: dict[str, Any]) -> None:
    """Add one LLM call's figures to the step that is running (nothing outside a step)."""
    calls = _LLM_CALLS.get()
    if calls is not None:
        calls.append(call)


@contextmanager
def timed_step(name: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Yield a step record; on exit it carries ``ms`` (and ``llm_calls`` when the step called the LLM)."""
    record: dict[str, Any] = {"step": name, **fields}
    calls: list[dict[str, Any]] = []
    token = _LLM_CALLS.set(calls)
    start = time.perf_counter()
    try:
        yield record
    finally:
        record["ms"] = round((time.perf_counter() - start) * 1000, 2)
        _LLM_CALLS.reset(token)
        if calls:
            record["llm_calls"] = calls
