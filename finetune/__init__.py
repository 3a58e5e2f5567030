"""hopmem.finetune: training of hopmem's rerankers and its TreeHop model on a user's own data.

- :mod:`~hopmem.finetune.recipe`: the skeleton every trainer shares (checks, data, checkpoints, run record, files);
- the recipes, each holding only its data, loss or reward and model: :mod:`~hopmem.finetune.cross_encoder`,
  :mod:`~hopmem.finetune.prorank`, :mod:`~hopmem.finetune.rank_r1`, :mod:`~hopmem.finetune.treehop_train`;
- their data and helpers: :mod:`~hopmem.finetune.reranker_data`, :mod:`~hopmem.finetune.treehop_data`,
  :mod:`~hopmem.finetune.grpo` (one GRPO run with TRL), :mod:`~hopmem.finetune.rewards`,
  :mod:`~hopmem.finetune.export` (half-precision copies of trained models);
- :mod:`~hopmem.finetune.api`: :func:`train`, one call for every recipe, and
  :mod:`~hopmem.finetune.training_run`: :class:`TrainingRun`, a finished run (report, curves, notebook display).

The package itself is callable: ``hopmem.finetune("treehop", dataset=..., output=..., settings=...)`` is
:func:`train` (its module object is of a ``ModuleType`` subclass with ``__call__``), and ``import hopmem.finetune``
still imports the package. Importing it loads no torch: the recipes are imported when a run starts.

It may import ``agents`` and ``memory``, never the SDK: what it shares with evaluation (BEIR data sets, query
splits, metrics, the run record) lives in ``memory``.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hopmem.finetune.api import TrainSettings
    from hopmem.finetune.training_run import TrainingRun


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
    """Train one recipe on BEIR data and return the run; ``hopmem.finetune(...)`` is this function.

    The work is :func:`hopmem.finetune.api.train` (read its arguments there); this wrapper keeps ``import
    hopmem.finetune`` free of torch, which the recipes load.

    Examples:
        The package is callable; a wrong recipe name is refused in one sentence before anything loads:

        >>> import hopmem
        >>> hopmem.finetune("colbert", dataset="data/cranfield", output="out")
        Traceback (most recent call last):
        ...
        hopmem.memory.errors.InputError: Unknown recipe 'colbert'; use one of: prorank, rank-r1, ...

        A real call trains (minutes on a CPU for a reranker; TreeHop on a small folder takes seconds) and returns a
        :class:`TrainingRun`, the same object :meth:`TrainingRun.load` reads back from a finished run's folder::

            run = hopmem.finetune("treehop", dataset="hotpot-small", output="runs/treehop",
                                  settings=hopmem.get_settings(), epochs=3)
            run            # in a notebook: the before/after table and the loss and recall curves
    """
    from hopmem.finetune.api import train as run_recipe

    return run_recipe(
        recipe, dataset=dataset, output=output, settings=settings, progress=progress, command=command, **options
    )


def __getattr__(name: str) -> Any:
    if name == "TrainingRun":
        from hopmem.finetune.training_run import TrainingRun

        return TrainingRun
    raise AttributeError(f"module 'hopmem.finetune' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """The package's module type: calling ``hopmem.finetune(...)`` calls :func:`train`."""

    def __call__(self, *args: Any, **kwargs: Any) -> TrainingRun:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
