"""The trace of one run: what each step did and how long it took. Plain JSON-ready dicts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def timed_step(name: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Yield a step record; on exit it carries ``ms``. Callers add outputs to the dict they were given."""
    record: dict[str, Any] = {"step": name, **fields}
    start = time.perf_counter()
    try:
        yield record
    finally:
        record["ms"] = round((time.perf_counter() - start) * 1000, 2)
