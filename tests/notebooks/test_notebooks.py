"""The notebooks in ``notebooks/``: each one runs top to bottom in a real Jupyter kernel, and is stored clean.

Every ``notebooks/*.ipynb`` is executed with nbclient in a fresh ipykernel (the ``python3`` kernel spec that ipykernel
installs into this virtual environment, started with this interpreter), with ``notebooks/`` as its working directory,
so a notebook is tested exactly as a reader runs it. A failing cell fails the test with that cell's source and
error. A notebook that needs a data set of the shared data (``metadata.hopmem.needs``, e.g. ``["cranfield"]``) is
skipped, with that reason, when the data set is absent. The notebooks make their own temporary data folders; the
suite's isolated environment (``HOPMEM_*`` variables cleared, an empty config file) reaches the kernel too.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (the dev extra)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (the dev extra)")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (the dev extra)")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
CELL_TIMEOUT_S = 600
"""Per cell: the slowest cell (a short training run) takes about a minute here; the margin is for a busy machine."""
NOTEBOOK_TIMEOUT_S = 1200
"""Per notebook (pytest-timeout; the suite's default is 600 s a test): the slowest took about 3.5 minutes here while
three other jobs shared the two cores."""


SHARED_DATA_ENV = os.environ.get("HOPMEM_SHARED_DATA")
"""Read when the module loads: the suite's fixture clears every HOPMEM_* variable before each test; the kernel gets it
back (:func:`test_notebook_runs`)."""


def _data_root() -> Path | None:
    """Where the notebooks look for the shared data (``notebooks/nbdata.py``: HOPMEM_SHARED_DATA, else beside the
    repository)."""
    if SHARED_DATA_ENV:
        return Path(SHARED_DATA_ENV)
    candidate = REPO.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def test_the_notebooks_are_there() -> None:
    names = {p.name for p in PATHS}
    for expected in (
        "01-quickstart.ipynb",
        "02-memory-trust-poisoning.ipynb",
        "03-multihop-treehop.ipynb",
        "04-finetune-reranker.ipynb",
        "05-evaluation.ipynb",
        "07-conversation-memory-locomo.ipynb",
    ):
        assert expected in names


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_stored_without_outputs(path: Path) -> None:
    """No outputs and no execution counts are committed (LoCoMo's text must never reach the repository through an
    output), and the kernel is the plain ``python3`` one."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernel is not python3"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has stored outputs"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"
    assert nb.cells and nb.cells[0].cell_type == "markdown", f"{path.name} must start by saying what it shows"


def _kernel_specs() -> object:
    """Kernel specs of this environment only (``<sys.prefix>/share/jupyter/kernels``, where ipykernel's wheel puts
    ``python3``): a ``python3`` spec in the user's own Jupyter folders, which may name another interpreter, is not
    consulted."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KernelSpecManager(kernel_dirs=[str(Path(sys.prefix) / "share" / "jupyter" / "kernels")])


def test_the_kernel_spec_is_this_environment() -> None:
    """``python3`` resolves to this interpreter (jupyter_client starts ``sys.executable`` for a spec whose command
    is ``python``), so the notebooks run with the installed hopmem on a fresh machine without a user kernel spec."""
    spec = _kernel_specs().get_kernel_spec("python3")  # type: ignore[attr-defined]
    assert spec.argv[0] in {"python", "python3", sys.executable}, spec.argv


@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S)
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    needs = list(nb.metadata.get("hopmem", {}).get("needs", []))
    root = _data_root()
    missing = [name for name in needs if root is None or not (root / name).is_dir()]
    if missing:
        pytest.skip(f"{path.name} needs {', '.join(missing)} of the shared data (../shared/data or HOPMEM_SHARED_DATA)")
    from jupyter_client.manager import AsyncKernelManager

    client = nbclient.NotebookClient(
        nb,
        km=AsyncKernelManager(kernel_name="python3", kernel_spec_manager=_kernel_specs()),
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    started = time.perf_counter()
    env = dict(os.environ)
    if SHARED_DATA_ENV:
        env["HOPMEM_SHARED_DATA"] = SHARED_DATA_ENV
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}", pytrace=False)
    print(f"{path.name}: {time.perf_counter() - started:.1f} s")
