"""The tuned planner: SmolLM2 with the LoRA adapter ``hopmem finetune decomposer`` trained with GRPO.

With ``Settings.planner = "tuned"`` the agent plans with this model instead of the rules or the prompted LLM: its own
short prompt (:func:`hopmem.agents.prompts.decompose_messages`, three examples where the prompted planner's
:func:`~hopmem.agents.prompts.plan_messages` has five) and the same checks as the prompted planner
(:func:`hopmem.agents.planner.plan_question` with ``decide="tuned"`` and this model as ``plan_llm``): the reply starts
with a forced ``{"``, is parsed against :func:`hopmem.agents.planner.plan_schema` and checked by
:func:`hopmem.agents.planner.check_plan`; anything invalid falls back to the rules (``source="fallback"``, counted
by ``hopmem eval qa`` as fallbacks). Training (:mod:`hopmem.finetune.decomposer`) uses exactly this prompt and this
reading of the reply, so what the reward saw is what the agent gets.

The adapter is found, in order, at ``Settings.planner_adapter``, at the one trained into ``cache_dir``
(:func:`default_decomposer_dir`) and at the one shipped in the package (:func:`packaged_decomposer_dir`). It runs in
process with transformers (float32 on a CPU; :class:`hopmem.agents.llm.transformers_llm.TransformersLLM`); a vLLM
server started with ``--enable-lora --lora-modules decomposer=<folder>`` serves the same adapter by name to the
OpenAI-compatible backend (``llm_backend="openai"``, ``llm_model="decomposer"``) if a GPU is at hand.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from hopmem.memory.errors import ModelNotAvailableError

if TYPE_CHECKING:
    from hopmem.agents.llm.base import ChatLLM

log = logging.getLogger(__name__)

RECORD_FILE = "hopmem_planner.json"
"""Written beside the adapter: its base model and how it was trained to be prompted."""
DEFAULT_BASE_MODEL = "SmolLM2-135M-Instruct"


def packaged_decomposer_dir() -> Path:
    """Where the decomposer adapter shipped with the package lives (it may be absent)."""
    return Path(__file__).resolve().parent / "planner_weights" / "decomposer"


def default_decomposer_dir(cache_dir: Path | str) -> Path:
    """Where ``hopmem finetune decomposer`` writes its adapter by default (and where the agent looks first)."""
    return Path(cache_dir).expanduser() / "planner" / "decomposer"


def find_decomposer(adapter: str | Path | None, cache_dir: Path | str) -> Path:
    """The adapter folder to plan with: ``adapter`` when given, else the trained one, else the packaged one.

    Raises:
        ModelNotAvailableError: when the given folder, or every default, holds no adapter.
    """
    if adapter:
        folder = Path(adapter).expanduser()
        if not (folder / "adapter_config.json").is_file():
            raise ModelNotAvailableError(f"No decomposer adapter at {folder} (adapter_config.json is missing).")
        return folder
    for folder in (default_decomposer_dir(cache_dir), packaged_decomposer_dir()):
        if (folder / "adapter_config.json").is_file():
            return folder
    raise ModelNotAvailableError(
        "No tuned planner is installed: train one with `hopmem finetune decomposer` or set HOPMEM_PLANNER=rules."
    )


def base_model_of(folder: Path) -> str:
    """The base model the adapter in ``folder`` was trained on (its record; SmolLM2-135M-Instruct without one)."""
    record = folder / RECORD_FILE
    if record.is_file():
        value = json.loads(record.read_text(encoding="utf-8")).get("base_model")
        if isinstance(value, str) and value:
            return value
    return DEFAULT_BASE_MODEL


def load_tuned_planner(adapter: str | Path | None, cache_dir: Path | str) -> ChatLLM:
    """The tuned planner's model: the base model with the decomposer adapter applied, run by transformers.

    Raises:
        ModelNotAvailableError: no adapter, or transformers/peft or the base model is missing.
    """
    from hopmem.agents.llm.transformers_llm import TransformersLLM

    folder = find_decomposer(adapter, cache_dir)
    llm = TransformersLLM(base_model_of(folder), adapter=str(folder), repeat_penalty=1.0)
    log.info("tuned planner: %s", llm.name)
    return llm
