"""The root package hands its names out lazily, so the memory layer stays light to import."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

HEAVY = ("torch", "langgraph", "llama_cpp", "sentence_transformers", "transformers", "llama_index", "gradio")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_memory_leaves_torch_and_langgraph_unloaded() -> None:
    loaded = _loaded_after("import hopmem.memory; from hopmem.memory import MemoryStore, HybridSearcher")
    assert "hopmem" in loaded
    assert not loaded.intersection(HEAVY), loaded.intersection(HEAVY)


def test_root_names_resolve_lazily() -> None:
    loaded = _loaded_after("import hopmem; hopmem.Settings")
    assert "pydantic_settings" in loaded
    assert not loaded.intersection(HEAVY)
    import hopmem

    assert hopmem.Agent.__name__ == "Agent"
    with pytest.raises(AttributeError):
        _ = hopmem.DoesNotExist  # type: ignore[attr-defined]


def test_wheel_installs_only_the_hopmem_package(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(repo),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("hopmem-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"hopmem", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for expected in (
        "hopmem/memory/store.py",
        "hopmem/agents/graph.py",
        "hopmem/app/cli.py",
        "hopmem/settings.py",
        "hopmem/sample/honeybees.md",
    ):
        assert expected in names
