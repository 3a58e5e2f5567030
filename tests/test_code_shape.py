"""The shape rules of the code base (docs/architecture.md): small modules and classes, or a stated reason.

A module over ``MODULE_LINES`` lines must say why in its docstring with a line starting ``Long because:``; a class
over ``CLASS_LINES`` lines must say so in its own docstring the same way. The limits are the issue's "about 500" and
"about 300" with a little slack, so that a file does not fail for a blank line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("sdk", "memory", "agents", "finetune", "app", "ui")
MODULE_LINES = 520
CLASS_LINES = 310
REASON = "Long because:"


def _modules(root: Path) -> list[Path]:
    return sorted(
        p for folder in PACKAGE_FOLDERS for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts
    )


def shape_problems(root: Path) -> list[str]:
    """Every module and class of the tree under ``root`` that is over its limit without a stated reason."""
    problems: list[str] = []
    for path in _modules(root):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        lines = len(text.splitlines())
        doc = ast.get_docstring(tree) or ""
        if lines > MODULE_LINES and REASON not in doc:
            problems.append(f"{path.relative_to(root)}: {lines} lines, no '{REASON}' in its docstring")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                if size > CLASS_LINES and REASON not in (ast.get_docstring(node) or ""):
                    problems.append(f"{path.relative_to(root)}: class {node.name} has {size} lines, no reason given")
    return problems


def test_modules_and_classes_are_small_or_say_why() -> None:
    assert shape_problems(ROOT) == []


@pytest.mark.parametrize("reason", [False, True])
def test_the_rule_catches_a_long_module_unless_it_says_why(tmp_path: Path, reason: bool) -> None:
    folder = tmp_path / "memory"
    folder.mkdir()
    doc = f'"""A module.\n\n{REASON} it is one table.\n"""\n' if reason else '"""A module."""\n'
    body = "".join(f"X{i} = {i}\n" for i in range(MODULE_LINES))
    (folder / "big.py").write_text(doc + body)
    for name in PACKAGE_FOLDERS[:1] + PACKAGE_FOLDERS[2:]:
        (tmp_path / name).mkdir()
    found = shape_problems(tmp_path)
    assert found == ([] if reason else [f"memory/big.py: {MODULE_LINES + 1} lines, no '{REASON}' in its docstring"])


def test_the_rule_catches_a_long_class(tmp_path: Path) -> None:
    for name in PACKAGE_FOLDERS:
        (tmp_path / name).mkdir()
    methods = "".join(f"    def m{i}(self) -> int:\n        return {i}\n\n" for i in range(CLASS_LINES // 3 + 1))
    (tmp_path / "agents" / "fat.py").write_text(f'"""A module."""\n\n\nclass Fat:\n{methods}')
    (found,) = shape_problems(tmp_path)
    assert found.startswith("agents/fat.py: class Fat has")
