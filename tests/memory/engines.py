"""Open the memory engine directly, configured from settings the way ``hopmem.Memory`` configures it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hopmem.memory.engine import EngineConfig, MemoryEngine
from hopmem.settings import Settings


def open_engine(
    settings: Settings, *, tenant: str | None = None, agent: str | None = None, path: Path | None = None
) -> MemoryEngine:
    """A :class:`MemoryEngine` over ``settings`` (``path`` replaces the store file), without the SDK facade."""
    overrides: dict[str, Any] = {"store_path": Path(path)} if path is not None else {}
    return MemoryEngine(EngineConfig.from_settings(settings, **overrides), tenant=tenant, agent=agent)
