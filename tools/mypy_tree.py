"""Lay out the package for mypy as it is installed: sdk/ -> hopmem/, memory/ -> hopmem/memory/, and so on.

The repository's folders map onto one import package through setuptools' package-dir, which mypy cannot follow;
this script mirrors that mapping with symbolic links under .mypy_src/ (ignored by git).
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TREE = REPO / ".mypy_src" / "hopmem"
SUBPACKAGES = ("memory", "agents", "finetune", "app", "ui")


def main() -> None:
    if TREE.parent.exists():
        shutil.rmtree(TREE.parent)
    TREE.mkdir(parents=True)
    for item in (REPO / "sdk").iterdir():
        if item.name != "__pycache__":
            (TREE / item.name).symlink_to(item)
    for name in SUBPACKAGES:
        (TREE / name).symlink_to(REPO / name)


if __name__ == "__main__":
    main()
