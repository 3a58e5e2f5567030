"""The skeleton every trainer shares, so a recipe module holds only what makes it that recipe.

A training run always goes the same way: check the inputs (a one-sentence :class:`InputError` before any slow
work), read the data, train with checkpoints that a later run with ``resume`` continues from, record the run
(:class:`hopmem.memory.run_record.RunRecord`: machine, code, versions, command, times, data and model identity),
write the model's files (weights, ``metrics.json``, ``data.json``, the model card) and remove the checkpoints unless
asked to keep them. :meth:`Recipe.run` is that order; a recipe subclasses :class:`Recipe` (or :class:`RerankerRecipe`,
which also reads the reranker training data and writes the reranker's files) and fills in its data, its training
(loss or reward, model) and its card:

- :mod:`hopmem.finetune.cross_encoder`: supervised cross-encoder (BCE on the logit, blend weight);
- :mod:`hopmem.finetune.prorank`: pointwise LLM reranker (GRPO warm-up, then score learning);
- :mod:`hopmem.finetune.rank_r1`: setwise reasoning LLM reranker (GRPO);
- :mod:`hopmem.finetune.treehop_train`: TreeHop next-query model (InfoNCE, early stopping).

Checkpoints are whole training states (model, optimiser, scheduler, step, losses) written atomically by
:func:`save_checkpoint`; :func:`load_checkpoint` refuses one from a run with another number of steps.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, cast

from hopmem.finetune.reranker_data import PairSampling, TrainingData, build_training_data, write_model_files
from hopmem.memory.datasets.beir import folder_hash
from hopmem.memory.errors import InputError
from hopmem.memory.run_record import RunRecord

if TYPE_CHECKING:
    from hopmem.memory.embeddings import Embedder

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"


class RecipeConfig(Protocol):
    """What the skeleton reads of every recipe's settings (a dataclass)."""

    @property
    def output(self) -> str: ...


class RerankerConfig(RecipeConfig, Protocol):
    """What the skeleton reads of a reranker recipe's settings."""

    @property
    def datasets(self) -> tuple[str, ...]: ...

    @property
    def base_model(self) -> str: ...

    @property
    def keep_checkpoints(self) -> bool: ...


ConfigT = TypeVar("ConfigT", bound=RecipeConfig)
RerankerConfigT = TypeVar("RerankerConfigT", bound=RerankerConfig)
DataT = TypeVar("DataT")


@dataclass(frozen=True)
class TrainContext:
    """What a training command hands every recipe besides its settings.

    Args:
        embedder: the memory's embedder (negatives are mined, and TreeHop's corpus embedded, with it).
        cache_dir: where indexed corpora are cached.
        chunk_size: chunking of the indexed corpus (the memory's settings).
        chunk_overlap: chunk overlap of the indexed corpus.
        progress: show progress bars.
        command: the command line, recorded in the report and the card (None: started from Python).
    """

    embedder: Embedder
    cache_dir: Path
    chunk_size: int
    chunk_overlap: int
    progress: bool = True
    command: str | None = None


class Recipe(ABC, Generic[ConfigT, DataT]):
    """One training run of one recipe; :meth:`run` is the shared order, subclasses fill in the steps.

    Attributes:
        config: the run's settings.
        context: embedder, corpus cache and chunking, progress, command.
        out: the output folder (``config.output``, ``~`` expanded).
        checkpoints: ``out/checkpoints``, where the training state goes between runs.
    """

    name: ClassVar[str]

    def __init__(self, config: ConfigT, context: TrainContext) -> None:
        self.config = config
        self.context = context
        self.out = Path(config.output).expanduser()
        self.checkpoints = self.out / CHECKPOINT_DIR
        self.started = time.perf_counter()
        self.data_seconds = 0.0

    def elapsed(self) -> float:
        """Seconds since :meth:`run` began."""
        return time.perf_counter() - self.started

    def check(self) -> None:
        """Refuse settings that cannot train, before any slow work (:class:`InputError`, one sentence)."""

    @abstractmethod
    def load_data(self) -> DataT:
        """Read and prepare everything the run trains and validates on."""

    @abstractmethod
    def fit(self, data: DataT) -> dict[str, Any]:
        """Train, save the weights into :attr:`out` and return the report (the run record is added after)."""

    @abstractmethod
    def write(self, report: dict[str, Any], data: DataT) -> None:
        """Write the model's files besides its weights: ``metrics.json`` (``report``), ``data.json``, the card."""

    def inputs(self, data: DataT) -> dict[str, Any]:
        """The identity of the data and models the run read, for the run record (none by default)."""
        return {}

    def keep_checkpoints(self) -> bool:
        """Whether :attr:`checkpoints` stays after a finished run (a recipe without checkpoints keeps nothing)."""
        return bool(getattr(self.config, "keep_checkpoints", True))

    def run(self) -> dict[str, Any]:
        """Check, load the data, train, record the run, write the files, drop the checkpoints; returns the report."""
        record = RunRecord(self.context.command)
        self.started = time.perf_counter()
        self.check()
        data = self.load_data()
        self.data_seconds = self.elapsed()
        report = self.fit(data)
        report.update(record.finish(self.inputs(data)))
        self.write(report, data)
        if not self.keep_checkpoints():
            shutil.rmtree(self.checkpoints, ignore_errors=True)
        return report


class RerankerRecipe(Recipe[RerankerConfigT, TrainingData]):
    """A reranker recipe: trains on :func:`hopmem.finetune.reranker_data.build_training_data` of ``datasets``.

    Writes :func:`hopmem.finetune.reranker_data.write_model_files` (with :meth:`adapter_record` for LLM adapters)
    and records each data set's hash, the base model and the embedder that mined the negatives.
    """

    def check(self) -> None:
        if not self.config.datasets:
            raise InputError("Give at least one BEIR folder to train on (--dataset).")

    def load_data(self) -> TrainingData:
        return build_training_data(
            PairSampling.of(self.config),
            self.context.embedder,
            cache_dir=self.context.cache_dir,
            chunk_size=self.context.chunk_size,
            chunk_overlap=self.context.chunk_overlap,
            progress=self.context.progress,
        )

    def config_fields(self) -> dict[str, Any]:
        """The settings as the report holds them (``datasets`` as a list)."""
        return {**asdict(cast(Any, self.config)), "datasets": list(self.config.datasets)}

    @staticmethod
    def data_fields(data: TrainingData) -> dict[str, Any]:
        """The report's fields on the data: counts per data set, split rules and the number of training pairs."""
        return {
            "data": data.counts,
            "splits": [{"dataset": s["dataset"], "rule": s["rule"]} for s in data.splits],
            "train_pairs": len(data.train),
        }

    @abstractmethod
    def model_card(self, report: dict[str, Any]) -> str:
        """The model card (README.md) written beside the weights."""

    def adapter_record(self) -> dict[str, Any] | None:
        """``hopmem_reranker.json`` of an LLM adapter (base model, prompt budget), or None (written elsewhere)."""
        return None

    def write(self, report: dict[str, Any], data: TrainingData) -> None:
        write_model_files(self.out, report, data.splits, self.model_card(report), self.adapter_record())

    def inputs(self, data: TrainingData) -> dict[str, Any]:
        return {
            "data": {Path(d).name: folder_hash(Path(d)) for d in self.config.datasets},
            "model": {"base_model": self.config.base_model, "embedder": self.context.embedder.name},
        }


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a training state atomically (a crash mid-write keeps the previous checkpoint)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, total_steps: int, stale: str) -> dict[str, Any] | None:
    """The training state saved at ``path``, or None when there is none.

    Args:
        path: the checkpoint file.
        total_steps: the steps of this run; a state saved by a run with another number is refused.
        stale: the error when it is refused (one sentence naming the checkpoint).

    Raises:
        InputError: ``stale``, for a checkpoint of a run with other settings.
    """
    import torch

    if not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("total_steps") != total_steps:
        raise InputError(stale)
    return state
