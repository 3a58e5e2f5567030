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
    "evaluate": "hopmem.eval.dispatch",
    "EvalReport": "hopmem.eval.display",
    "Trace": "hopmem.trace_view",
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
    "EvalReport",
    "HopmemError",
    "IngestError",
    "InputError",
    "LLMError",
    "Memory",
    "ModelNotAvailableError",
    "Settings",
    "StoreError",
    "Trace",
    "__version__",
    "evaluate",
    "evaluate_retrieval",
    "finetune",
    "get_settings",
]

if TYPE_CHECKING:
    from hopmem.agent_api import Agent
    from hopmem.answer import Answer
    from hopmem.eval.dispatch import evaluate
    from hopmem.eval.display import EvalReport
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
    from hopmem.trace_view import Trace


_SUBPACKAGES = {"finetune": "hopmem.finetune"}
"""Subpackages handed out as names of the root: ``hopmem.finetune(...)`` calls the training package itself (its
module is callable, see :func:`hopmem.finetune.train`). Imported on first access only, by name, so importing
``hopmem`` loads none of it; no SDK module imports the training package (docs/architecture.md)."""


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        package = importlib.import_module(_SUBPACKAGES[name])
        globals()[name] = package
        return package
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hopmem' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
