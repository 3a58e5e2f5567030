"""hopmem: a local-first agentic RAG and memory engine.

The names below are loaded on first access (PEP 562), so ``import hopmem.memory`` stays free of torch and LangGraph.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Settings": "hopmem.settings",
    "get_settings": "hopmem.settings",
    "Memory": "hopmem.memory_api",
    "Agent": "hopmem.agent_api",
    "Answer": "hopmem.answer",
    "evaluate_retrieval": "hopmem.eval.retrieval",
    "HopmemError": "hopmem.memory.errors",
    "InputError": "hopmem.memory.errors",
    "ModelNotAvailableError": "hopmem.memory.errors",
    "StoreError": "hopmem.memory.errors",
    "LLMError": "hopmem.memory.errors",
    "IngestError": "hopmem.memory.errors",
    "ConfigError": "hopmem.memory.errors",
}

__all__ = [
    "Agent",
    "Answer",
    "ConfigError",
    "HopmemError",
    "IngestError",
    "InputError",
    "LLMError",
    "Memory",
    "ModelNotAvailableError",
    "Settings",
    "StoreError",
    "__version__",
    "evaluate_retrieval",
    "get_settings",
]

if TYPE_CHECKING:
    from hopmem.agent_api import Agent
    from hopmem.answer import Answer
    from hopmem.eval.retrieval import evaluate_retrieval
    from hopmem.memory.errors import (
        ConfigError,
        HopmemError,
        IngestError,
        InputError,
        LLMError,
        ModelNotAvailableError,
        StoreError,
    )
    from hopmem.memory_api import Memory
    from hopmem.settings import Settings, get_settings


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hopmem' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
