"""The run record: what produced a report or a trained model, in the same keys everywhere.

Every evaluation report (``hopmem.eval``), benchmark (``hopmem.bench``) and trainer (``hopmem.finetune``) merges
:meth:`RunRecord.finish` into what it writes, so a number or a model can always be traced back to its machine, its
code and its command line:

- ``git_revision``: the commit of the hopmem checkout, ``-dirty`` with uncommitted changes, ``unknown`` outside git;
- ``machine``: platform, processor, CPU count, Python version, the 1-minute load average (other work on a small
  machine inflates latencies) and, when torch is loaded, its thread count and CUDA device;
- ``versions``: hopmem and the libraries this process has loaded (torch, transformers, ...), from their metadata;
- ``command``: the command line (given by the caller; :func:`cli_command` builds the ``hopmem ...`` one);
- ``started_at`` / ``finished_at``: UTC times, ISO 8601, to the second;
- ``inputs`` (only when given): the identity of the data and models read, e.g. data-set hashes and a base model.

Why it sits in ``memory``: the three layers that record runs may all import ``memory`` and none of them may import
each other (``finetune`` may not import the SDK), so the bottom layer is the one place all of them can share. It uses
the standard library only and never imports torch: the torch fields are filled only when the caller has loaded it.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# import name -> distribution name, recorded in ``versions`` when the module is loaded in this process
RECORDED_LIBRARIES: dict[str, str] = {
    "numpy": "numpy",
    "torch": "torch",
    "transformers": "transformers",
    "sentence_transformers": "sentence-transformers",
    "peft": "peft",
    "trl": "trl",
    "llama_cpp": "llama-cpp-python",
    "vllm": "vllm",
    "langgraph": "langgraph",
    "qdrant_client": "qdrant-client",
    "onnxruntime": "onnxruntime",
}


def git_revision() -> str:
    """The commit of the hopmem checkout (with ``-dirty`` when it has changes), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    """The machine a run ran on; ``torch_threads`` and ``cuda`` only when torch is already loaded."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine inflates latencies
    }
    torch: Any = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        info["torch_threads"] = int(torch.get_num_threads())
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def package_versions() -> dict[str, str]:
    """hopmem's version and those of the libraries of :data:`RECORDED_LIBRARIES` that this process has loaded."""
    versions: dict[str, str] = {}
    for module, dist in {"hopmem": "hopmem", **RECORDED_LIBRARIES}.items():
        if module != "hopmem" and module not in sys.modules:
            continue
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def cli_command() -> str | None:
    """The ``hopmem`` command line being run; None when the run was started from Python (not the CLI)."""
    return " ".join(["hopmem", *sys.argv[1:]]) if Path(sys.argv[0]).name == "hopmem" else None


def utc_time(seconds: float) -> str:
    """``seconds`` since the epoch as a UTC ISO 8601 time to the second (``2026-12-05T15:10:22Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass
class RunRecord:
    """Begun when a run starts (the start time is taken then); :meth:`finish` gives the record's fields.

    Args:
        command: the command line of the run (None: started from Python).
        started: seconds since the epoch when the run began (now by default).
    """

    command: str | None = None
    started: float = field(default_factory=time.time)

    def finish(self, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The record's fields, to merge into a report (``{**report_fields, **record.finish()}``).

        Args:
            inputs: identity of the data and models the run read (recorded as ``inputs`` when given).
        """
        record: dict[str, Any] = {
            "git_revision": git_revision(),
            "machine": machine_info(),
            "versions": package_versions(),
            "command": self.command,
            "started_at": utc_time(self.started),
            "finished_at": utc_time(time.time()),
        }
        if inputs:
            record["inputs"] = dict(inputs)
        return record
