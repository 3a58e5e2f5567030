"""The root package hands its names out lazily, so the memory layer stays light to import."""

from __future__ import annotations

import shutil
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
    """Built from a copy of the checkout's files, so a stale build/ folder cannot hide a missing module."""
    repo = Path(__file__).resolve().parents[1]
    source = tmp_path / "src"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in listed:
        if (repo / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, source / name)
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
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("hopmem-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"hopmem", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    assert "hopmem/sample/honeybees.md" in names
    shipped = {n for n in names if n.endswith(".py")}
    assert shipped == _tracked_modules(repo), "the wheel's modules differ from the tracked sources (a stale build/?)"


def _tracked_modules(repo: Path) -> set[str]:
    """Where each tracked source file lands in the wheel, from pyproject's package-dir mapping."""
    mapping = {"sdk": "hopmem", "memory": "hopmem/memory", "agents": "hopmem/agents"}
    mapping |= {"finetune": "hopmem/finetune", "app": "hopmem/app", "ui": "hopmem/ui"}
    tracked = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", *mapping], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    return {mapping[f.split("/")[0]] + f[f.index("/") :] for f in tracked if f.endswith(".py")}
