"""``hopmem.integrations`` loads no framework until one of its modules is imported; a missing one is named."""

from __future__ import annotations

import subprocess
import sys

from hopmem.integrations.base import missing_framework

FRAMEWORKS = ("llama_index", "langchain_core", "langgraph", "torch")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_package_loads_no_framework() -> None:
    loaded = _loaded_after("import hopmem.integrations")
    assert "hopmem" in loaded
    assert not loaded.intersection(FRAMEWORKS), loaded.intersection(FRAMEWORKS)


def test_each_module_loads_only_its_framework() -> None:
    loaded = _loaded_after("import hopmem.integrations.langgraph")
    assert "langgraph" in loaded and "llama_index" not in loaded


def test_a_missing_framework_is_named_with_its_install_command() -> None:
    error = missing_framework("llama-index-core", "llama_index.core")
    assert str(error) == (
        "hopmem.integrations needs llama-index-core for this (llama_index.core could not be imported); "
        "install it with: pip install llama-index-core"
    )
