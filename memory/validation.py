"""Checks on what callers hand the memory layer, turned into one-sentence :class:`InputError` messages.

Everything is validated before a transaction begins, so bad input never leaves a half-written store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from hopmem.memory.errors import InputError
from hopmem.memory.records import SOURCE_CLASSES, MemoryInput, SearchFilter

MAX_TAGS = 64
MAX_TAG_CHARS = 100
MAX_TITLE_CHARS = 1_000
MAX_METADATA_CHARS = 64_000
MAX_AGENT_CHARS = 200


def content(value: object, *, max_chars: int, what: str = "memory") -> str:
    if not isinstance(value, str):
        raise InputError(f"The {what} content must be a string, not {type(value).__name__}.")
    if not value.strip():
        raise InputError(f"The {what} content is empty; give some text to remember.")
    if "\x00" in value:
        raise InputError(f"The {what} content contains a NUL character; remove it.")
    if len(value) > max_chars:
        raise InputError(
            f"The {what} content has {len(value):,} characters, over the limit of {max_chars:,}; "
            "split it or raise HOPMEM_MAX_MEMORY_CHARS."
        )
    return value


def title(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"The title must be a string, not {type(value).__name__}.")
    if len(value) > MAX_TITLE_CHARS:
        raise InputError(f"The title has {len(value):,} characters, over the limit of {MAX_TITLE_CHARS:,}.")
    return value


def tags(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise InputError(f"Tags must be a list of strings, not {type(value).__name__}.")
    out: dict[str, None] = {}
    for tag in value:
        if not isinstance(tag, str) or not tag.strip():
            raise InputError(f"Every tag must be a non-empty string; got {tag!r}.")
        if len(tag) > MAX_TAG_CHARS:
            raise InputError(f"The tag {tag[:20]!r}... is over {MAX_TAG_CHARS} characters.")
        out.setdefault(tag.strip(), None)
    if len(out) > MAX_TAGS:
        raise InputError(f"A memory takes at most {MAX_TAGS} tags, not {len(out)}.")
    return tuple(out)


def metadata(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"Metadata must be a JSON object (a dict), not {type(value).__name__}.")
    if not all(isinstance(k, str) for k in value):
        raise InputError("Metadata keys must be strings.")
    try:
        text = json.dumps(dict(value), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"Metadata must be JSON-serialisable without NaN or infinity ({exc}).") from exc
    if len(text) > MAX_METADATA_CHARS:
        raise InputError(f"Metadata is {len(text):,} characters as JSON, over the limit of {MAX_METADATA_CHARS:,}.")
    return dict(json.loads(text))


def agent_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_AGENT_CHARS:
        raise InputError(f"An agent id must be a non-empty string of at most {MAX_AGENT_CHARS} characters.")
    return value.strip()


def source_class(value: object) -> str:
    if value not in SOURCE_CLASSES:
        raise InputError(f"Unknown source class {value!r}; use one of {', '.join(SOURCE_CLASSES)}.")
    return str(value)


def importance(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"Importance must be a number between 0 and 1, not {value!r}.")
    if not 0.0 <= float(value) <= 1.0:
        raise InputError(f"Importance must be between 0 and 1, not {value}.")
    return float(value)


def memory_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        try:
            parsed = int(str(value).strip()) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or parsed <= 0:
            raise InputError(f"A memory id is a positive integer, not {value!r}.")
        return parsed
    return value


def memory_input(
    text: object,
    *,
    max_chars: int,
    title_: object = None,
    tags_: object = None,
    metadata_: object = None,
    agent: object = None,
    source_class_: object = "user",
    importance_: object = 0.5,
    source: object = None,
) -> MemoryInput:
    """Validate one memory's fields; raises :class:`InputError` naming the first bad field."""
    if source is not None and not isinstance(source, str):
        raise InputError(f"The source must be a string, not {type(source).__name__}.")
    return MemoryInput(
        content=content(text, max_chars=max_chars),
        title=title(title_),
        tags=tags(tags_),
        metadata=metadata(metadata_),
        agent_id=agent_id(agent),
        source_class=source_class(source_class_),
        importance=importance(importance_),
        source=source,
    )


def search_filter(
    *,
    agent: object = None,
    tags_: object = None,
    source_classes: object = None,
    since: object = None,
    until: object = None,
) -> SearchFilter:
    classes = () if source_classes is None else tags(source_classes)
    for cls in classes:
        source_class(cls)
    bounds: list[float | None] = []
    for name, bound in (("since", since), ("until", until)):
        if bound is None:
            bounds.append(None)
        elif isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound):
            raise InputError(f"{name} must be a Unix time in seconds, not {bound!r}.")
        else:
            bounds.append(float(bound))
    return SearchFilter(
        agent_id=agent_id(agent), tags=tags(tags_), source_classes=classes, since=bounds[0], until=bounds[1]
    )
