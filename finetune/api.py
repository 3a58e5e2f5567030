"""One call for every recipe: ``hopmem.finetune("prorank", dataset=..., output=...)`` from Python.

:func:`train` builds the recipe's own settings record (``TreeHopTrainConfig``, ``CrossEncoderTrainConfig``,
``ProRankConfig``, ``RankR1Config``) from keyword options named like that record's fields, so the defaults are the
recipe's own and a new field is usable at once; then it runs the recipe's ``train_*`` function, the same one
``hopmem finetune ...`` runs, and hands back the run as a :class:`~hopmem.finetune.training_run.TrainingRun`.

The finetune package may not import the SDK, so the memory's settings (which embedder mines negatives and embeds the
corpus, where indexed corpora are cached, how they are chunked) come in as an argument: ``settings=`` takes
``hopmem.get_settings()`` or anything with the same fields, the way the CLI hands its settings in.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from hopmem.finetune.training_run import TrainingRun
from hopmem.memory.errors import InputError

log = logging.getLogger(__name__)

RECIPES = ("prorank", "rank-r1", "cross-encoder", "treehop", "decomposer")
"""What :func:`train` runs: three rerankers, the TreeHop next-query model and the query decomposer."""


class TrainSettings(Protocol):
    """What a run reads of the memory's settings (``hopmem.Settings`` has all of it)."""

    @property
    def embedder(self) -> str: ...

    @property
    def cache_dir(self) -> Path: ...

    @property
    def chunk_size(self) -> int: ...

    @property
    def chunk_overlap(self) -> int: ...

    def embedder_options(self) -> dict[str, Any]: ...


def _recipe(recipe: str) -> tuple[type[Any], Callable[..., dict[str, Any]]]:
    """The settings record and the training function of ``recipe`` (imported here: they load torch)."""
    if recipe == "treehop":
        from hopmem.finetune.treehop_train import TreeHopTrainConfig, train_treehop

        return TreeHopTrainConfig, train_treehop
    if recipe == "cross-encoder":
        from hopmem.finetune.cross_encoder import CrossEncoderTrainConfig, train_cross_encoder

        return CrossEncoderTrainConfig, train_cross_encoder
    if recipe == "prorank":
        from hopmem.finetune.prorank import ProRankConfig, train_prorank

        return ProRankConfig, train_prorank
    if recipe == "decomposer":
        from hopmem.finetune.decomposer import DecomposerConfig, train_decomposer

        return DecomposerConfig, train_decomposer
    from hopmem.finetune.rank_r1 import RankR1Config, train_rank_r1

    return RankR1Config, train_rank_r1


def check_recipe(recipe: object) -> str:
    """``recipe`` when it names one of :data:`RECIPES`.

    Raises:
        InputError: on anything else, in one sentence naming the recipes.
    """
    if not isinstance(recipe, str) or recipe not in RECIPES:
        raise InputError(f"Unknown recipe {recipe!r}; use one of: {', '.join(RECIPES)}.")
    return recipe


def _datasets(recipe: str, dataset: Path | str | Sequence[Path | str] | None) -> list[str]:
    if dataset is None:
        if recipe == "treehop":
            raise InputError(
                "The treehop recipe needs dataset=, a BEIR folder whose questions have 2+ supporting passages."
            )
        from hopmem.finetune.cross_encoder import default_training_datasets

        found = [str(d) for d in default_training_datasets()]
        if recipe == "decomposer":  # questions with supporting passages: the HotpotQA folders
            found = [d for d in found if Path(d).name.startswith("hotpotqa")]
        if not found:
            raise InputError(
                "No training data: pass dataset= (a BEIR folder), or put cranfield/hotpotqa under ../shared/data."
            )
        return found
    folders = [dataset] if isinstance(dataset, str | Path) else list(dataset)
    if recipe == "treehop" and not folders:
        raise InputError("The treehop recipe needs dataset=, one or more BEIR folders of multi-hop questions.")
    return [str(Path(d).expanduser()) for d in folders]


def _output(recipe: str, output: Path | str | None, settings: TrainSettings) -> str:
    if output is not None:
        return str(Path(output).expanduser())
    if recipe == "treehop":
        raise InputError("The treehop recipe needs output=, the folder for the weights, card and metrics.")
    from hopmem.agents.rerank.model_paths import default_cross_encoder_dir, default_llm_reranker_dir

    if recipe == "decomposer":
        from hopmem.agents.tuned_planner import default_decomposer_dir

        return str(default_decomposer_dir(settings.cache_dir))

    if recipe == "cross-encoder":
        return str(default_cross_encoder_dir(settings.cache_dir))
    return str(default_llm_reranker_dir(recipe, settings.cache_dir))


def _agent_fields(fields: dict[str, Any], settings: object) -> None:
    """The decomposer's agent reward reads the user's agent settings (retrieval, TreeHop, reranker), as the CLI does:
    given as dicts they become records; not given, they are read from ``settings`` when it has them
    (``hopmem.Settings`` does), else the records' defaults (``hopmem.Settings``' defaults) stand."""
    from hopmem.agents.config import AgentConfig
    from hopmem.finetune.decomposer_pipeline import PipelineSettings

    for name, record in (("pipeline_settings", PipelineSettings), ("agent", AgentConfig)):
        value = fields.get(name)
        if isinstance(value, dict):
            try:
                fields[name] = record(**value)
            except TypeError as exc:
                raise InputError(f"Bad {name} for the decomposer: {exc}.") from exc
        elif value is None and all(hasattr(settings, f.name) for f in dataclasses.fields(record)):
            fields[name] = record.from_settings(settings)


def _config(record: type[Any], fields: dict[str, Any]) -> Any:
    """The recipe's settings record from ``fields``; GRPO stages and rank-r1's warm-up may be given as dicts."""
    known = {f.name: f for f in dataclasses.fields(record)}
    unknown = sorted(set(fields) - set(known))
    if unknown:
        options = ", ".join(n for n in known if n not in ("dataset", "datasets", "output"))
        raise InputError(f"Unknown option {unknown[0]!r} for {record.__name__}; it takes: {options}.")
    for name in ("stage1", "stage2", "grpo"):
        if isinstance(fields.get(name), dict):
            from hopmem.finetune.grpo import GRPOSettings

            fields[name] = GRPOSettings(**fields[name])
    if isinstance(fields.get("reward"), dict):
        from hopmem.finetune.decomposer_reward import RewardWeights

        fields["reward"] = RewardWeights(**fields["reward"])
    if isinstance(fields.get("sft"), dict):
        from hopmem.finetune.sft import SFTSettings

        fields["sft"] = SFTSettings(**fields["sft"])
    for name, value in list(fields.items()):
        if isinstance(value, list):
            fields[name] = tuple(value)  # the records hold tuples (datasets, splits, LoRA targets)
    try:
        return record(**fields)
    except TypeError as exc:
        raise InputError(f"Bad options for {record.__name__}: {exc}.") from exc


def train(
    recipe: str,
    *,
    dataset: Path | str | Sequence[Path | str] | None = None,
    output: Path | str | None = None,
    settings: TrainSettings | None = None,
    progress: bool = True,
    command: str | None = None,
    **options: Any,
) -> TrainingRun:
    """Train one recipe and return the run (its folder holds the weights, ``metrics.json`` and the model card).

    Args:
        recipe: ``prorank`` (pointwise LLM reranker: GRPO warm-up, then score learning), ``rank-r1`` (setwise
            reasoning reranker, GRPO), ``cross-encoder`` (supervised MiniLM), ``treehop`` (the next-query model) or
            ``decomposer`` (the query planner, GRPO; ``DecomposerConfig``).
        dataset: BEIR folder(s). Rerankers take several and default to the shared cranfield, hotpotqa and
            hotpotqa-extra folders that exist; TreeHop takes one or more multi-hop folders and needs them.
        output: the model's folder. Rerankers default to where the agent's reranker of that name looks first
            (under ``settings.cache_dir``); TreeHop needs it.
        settings: the memory's settings (``hopmem.get_settings()``): embedder, cache folder and chunking. Required:
            this package may not read the SDK's settings itself.
        progress: progress bars.
        command: recorded in the report and the card as what started the run (default: none, a Python call).
        **options: fields of the recipe's settings record, e.g. ``epochs=3`` for TreeHop, ``max_train_pairs=200``
            and ``stage1={"steps": 10}`` for prorank (see ``TreeHopTrainConfig``, ``CrossEncoderTrainConfig``,
            ``ProRankConfig``, ``RankR1Config``).

    Returns:
        The finished run (:class:`TrainingRun`: its report, curves and rich display).

    Raises:
        InputError: on an unknown recipe or option, missing data or folder, no settings, or data that cannot train.
    """
    recipe = check_recipe(recipe)
    if settings is None:
        raise InputError(
            "Training needs the memory's settings (embedder, cache, chunking): pass settings=hopmem.get_settings()."
        )
    record, fit = _recipe(recipe)
    folders = _datasets(recipe, dataset)
    out = _output(recipe, output, settings)
    fields: dict[str, Any] = {"output": out, **options}
    fields["datasets"] = tuple(folders)
    if recipe == "decomposer":
        _agent_fields(fields, settings)
    config = _config(record, fields)
    from hopmem.memory.embeddings import load_embedder

    embedder = load_embedder(settings.embedder, **settings.embedder_options())
    log.info("training %s into %s", recipe, out)
    report = fit(
        config,
        embedder,
        cache_dir=settings.cache_dir,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        progress=progress,
        command=command,
    )
    return TrainingRun(Path(out), report)
