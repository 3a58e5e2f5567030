"""pyproject's package list matches the folders: a new subpackage that is not listed would be left out of a wheel
(the editable install finds it anyway, so only a test catches it)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> tuple[dict[str, str], set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return config["package-dir"], set(config["packages"])


def _folder(package: str, package_dir: dict[str, str]) -> Path:
    best = max((p for p in package_dir if package == p or package.startswith(p + ".")), key=len)
    rest = package[len(best) :].lstrip(".")
    return ROOT / package_dir[best] / Path(*rest.split(".")) if rest else ROOT / package_dir[best]


def _python_packages(package_dir: dict[str, str]) -> set[str]:
    found: set[str] = set()
    for name, folder in package_dir.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if "__pycache__" in rel.parts:
                continue
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    return found


def test_every_python_package_is_declared() -> None:
    package_dir, declared = _declared()
    missing = _python_packages(package_dir) - declared
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_every_declared_package_exists() -> None:
    package_dir, declared = _declared()
    absent = sorted(p for p in declared if not _folder(p, package_dir).is_dir())
    assert not absent, f"pyproject.toml declares packages with no folder: {absent}"
