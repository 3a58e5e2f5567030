"""Where reranker models are found: a given folder, else the user's own training in the cache, else the shipped one.

The shipped models live in the package data folder ``agents/reranker_weights/`` (``hopmem.agents.reranker_weights``):
the packed default cross-encoder (:mod:`hopmem.agents.rerank.cross_encoder_pack`) and the ``prorank`` LoRA adapter.
``hopmem finetune reranker --recipe RECIPE`` trains into the cache folders named here, which are looked at first.
A folder is recognised by its files alone, so these checks import nothing heavy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hopmem.agents.rerank.cross_encoder_pack import is_packed_cross_encoder
from hopmem.memory.errors import ConfigError

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "reranker_weights"
"""The shipped rerankers (package data of ``hopmem.agents``)."""
RECORD_FILE = "hopmem_reranker.json"
"""Written beside a hopmem-trained LLM reranker adapter: recipe, base model, token budgets (set size for rank-r1)."""


def is_cross_encoder_dir(folder: Path) -> bool:
    """True when ``folder`` looks like a saved cross-encoder (a config and a weights file) or a packed one."""
    folder = Path(folder)
    has_weights = any((folder / name).is_file() for name in ("model.safetensors", "pytorch_model.bin"))
    return ((folder / "config.json").is_file() and has_weights) or is_packed_cross_encoder(folder)


def default_cross_encoder_dir(cache_dir: Path) -> Path:
    """Where a user's own cross-encoder (``hopmem finetune reranker --recipe cross-encoder``) is saved by default."""
    return Path(cache_dir).expanduser() / "models" / "cross-encoder-minilm-l6"


def shipped_cross_encoder_dir() -> Path:
    """The default cross-encoder shipped inside the package, packed (:mod:`hopmem.agents.rerank.cross_encoder_pack`)."""
    return WEIGHTS_DIR / "cross-encoder"


def find_cross_encoder(location: str | Path | None, cache_dir: Path) -> Path:
    """The cross-encoder folder: ``location`` when given, else the user's own (trained into the cache), else the
    shipped one.

    Raises:
        ConfigError: when ``location`` holds no cross-encoder, or no folder of the lookup does (the message says
            how to train one).
    """
    if location:
        folder = Path(location).expanduser()
        if is_cross_encoder_dir(folder):
            return folder
        raise ConfigError(
            f"No cross-encoder in {folder} (config.json and weights expected); train one with "
            "`hopmem finetune reranker --recipe cross-encoder` or set HOPMEM_RERANKER=none."
        )
    for folder in (default_cross_encoder_dir(cache_dir), shipped_cross_encoder_dir()):
        if is_cross_encoder_dir(folder):
            return folder
    raise ConfigError(
        f"No cross-encoder in {default_cross_encoder_dir(cache_dir)} nor in the package; train one with "
        "`make finetune-cross-encoder` or set HOPMEM_RERANKER=none."
    )


def read_reranker_record(folder: Path | None) -> dict[str, Any]:
    """What a hopmem-trained adapter records about itself (``hopmem_reranker.json``: recipe, base model, token
    budgets); empty when the folder has none."""
    if folder is None:
        return {}
    path = Path(folder) / RECORD_FILE
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def is_adapter_dir(folder: Path | str) -> bool:
    """True when ``folder`` holds a peft adapter (its config and weights)."""
    folder = Path(folder)
    weights = any((folder / n).is_file() for n in ("adapter_model.safetensors", "adapter_model.bin"))
    return (folder / "adapter_config.json").is_file() and weights


def default_llm_reranker_dir(recipe: str, cache_dir: Path) -> Path:
    """Where ``hopmem finetune reranker --recipe RECIPE`` saves its LoRA adapter by default (and the agent looks)."""
    return Path(cache_dir).expanduser() / "models" / f"{recipe}-adapter"


def shipped_adapter_dir(recipe: str) -> Path:
    """The adapter of ``recipe`` shipped inside the package (it may be absent for a recipe)."""
    return WEIGHTS_DIR / recipe


def find_adapter(recipe: str, location: str | Path | None, cache_dir: Path) -> Path:
    """The adapter folder of ``recipe``: ``location`` when given, else the user's own (trained into the cache), else
    the shipped one.

    Raises:
        ConfigError: when none of them holds an adapter (the message says how to train one).
    """
    if location:
        folder = Path(location).expanduser()
        if is_adapter_dir(folder):
            return folder
        raise ConfigError(f"No LoRA adapter in {folder}; train one with `hopmem finetune reranker --recipe {recipe}`.")
    for folder in (default_llm_reranker_dir(recipe, cache_dir), shipped_adapter_dir(recipe)):
        if is_adapter_dir(folder):
            return folder
    raise ConfigError(
        f"No {recipe} adapter is installed; train one with `hopmem finetune reranker --recipe {recipe}` or set "
        "HOPMEM_RERANKER=none."
    )
