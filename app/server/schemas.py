"""Request bodies of the memory REST API, with the examples the OpenAPI schema shows.

Only shapes and types are checked here; the memory engine checks the values (lengths, tags, source classes) and
answers with one sentence, so the rules live in one place.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_FORBID = ConfigDict(extra="forbid")


class MemoryIn(BaseModel):
    """One memory to write. ``agent`` may be set only by a user key (labelling a write as an agent's)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"content": "The staff meeting moved to Thursdays at 10.", "title": "Meetings", "tags": ["work"]}
            ]
        },
    )
    content: str
    title: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    agent: str | None = None
    source_class: str = "user"
    importance: float = 0.5
    source: str | None = None
    derived_from: list[int] | None = None


class BatchIn(BaseModel):
    """Many memories, validated whole before the first write (one bad item writes nothing)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"items": [{"content": "Alice leads the data team."}, {"content": "Bob is on call."}]}]
        },
    )
    items: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    agent: str | None = None
    source_class: str = "user"


class SearchIn(BaseModel):
    """A search: ``mode`` lexical, dense or hybrid; filters combine (and)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "when is the staff meeting", "k": 5, "mode": "hybrid"}]},
    )
    query: str
    k: int = 10
    mode: str = "hybrid"
    agent: str | None = None
    tags: list[str] | None = None
    source_class: list[str] | None = None
    since: float | None = None
    until: float | None = None


class UpdateIn(BaseModel):
    """A change to a memory; fields left out stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"content": "The staff meeting moved to Fridays.", "reason": "corrected"}]},
    )
    content: str | None = None
    title: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    importance: float | None = None
    reason: str | None = None


class EraseIn(BaseModel):
    """What to erase: ids, a filter, or ``everything`` (the whole tenant; no other selector)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"agent": "scraper"}, {"ids": [3, 4]}]})
    ids: list[int] | None = None
    agent: str | None = None
    tags: list[str] | None = None
    source_class: list[str] | None = None
    since: float | None = None
    until: float | None = None
    everything: bool = False


class FeedbackIn(BaseModel):
    """Feedback on a memory: ``up``, ``down`` or ``click``, optionally with the query it answered."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"kind": "up", "query": "staff meeting"}]}
    )
    kind: str = "up"
    query: str | None = None


class ReviewIn(BaseModel):
    """Quarantined memory ids to approve or reject (a user key only)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ids": [12], "note": "checked"}]})
    ids: list[int] = Field(min_length=1)
    note: str | None = None
