"""The dependency direction of DESIGN.md, enforced on the real source.

Each top-level folder is one part of the ``hopmem`` import package (pyproject's ``package-dir``: ``sdk/`` is the root
``hopmem``, ``memory/`` is ``hopmem.memory``, ...). An arrow means "may import":
``app, ui -> sdk -> agents -> memory``; ``finetune -> agents, memory``; ``app -> finetune``; ``memory`` imports no other
part, and nothing imports ``app`` or ``ui``. The checker reads the files with :mod:`ast` (nothing is imported), so a
broken rule is found even in a branch no test runs.

Two checks, each a function of a source root so that the tests below can also run them on a synthetic tree:

* :func:`rule_violations`: every import of a ``hopmem`` module, wherever it stands (module level, inside a function,
  under ``if TYPE_CHECKING:``), must go from a part to a part it may import.
* :func:`import_cycles`: among imports that run when a module is imported (module level, class bodies, ``try``
  blocks; not inside functions and not under ``if TYPE_CHECKING:``), no group of two or more modules may import each
  other in a circle. Python imports a module's parent packages first, but those implicit edges are left out: a
  package ``__init__`` that imports its own submodules would otherwise put every package in a cycle. An explicit
  ``from hopmem.memory import MemoryStore`` inside ``hopmem.memory`` does count: it imports the package
  ``__init__`` by name. With ``deferred=True`` imports inside functions count too; the tree has no such cycle either.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT_PACKAGE = "hopmem"
SDK = "sdk"  # the part name of the root package and its own subpackages (hopmem.bench, ...)

# What each part may import (itself included). DESIGN.md: `app, ui -> sdk -> agents -> memory`;
# `finetune -> agents, memory`; `app -> finetune`; memory imports no other part; nothing imports app or ui
# (`hopmem ui` replaces its process with `python -m hopmem.ui`).
# ui gets the error classes through the root package (`hopmem.InputError`), not from hopmem.memory.errors.
ALLOWED: dict[str, frozenset[str]] = {
    "memory": frozenset({"memory"}),
    "agents": frozenset({"agents", "memory"}),
    "finetune": frozenset({"finetune", "agents", "memory"}),
    SDK: frozenset({SDK, "agents", "memory"}),
    "app": frozenset({"app", SDK, "agents", "memory", "finetune"}),
    "ui": frozenset({"ui", SDK}),
}


def package_dirs(root: Path = REPO) -> dict[str, str]:
    """The folder of each import package, from ``root/pyproject.toml`` (``{"hopmem": "sdk", ...}``)."""
    with (root / "pyproject.toml").open("rb") as fh:
        dirs: dict[str, str] = tomllib.load(fh)["tool"]["setuptools"]["package-dir"]
    return dirs


@dataclass(frozen=True)
class ImportEdge:
    """One ``hopmem`` import found in a source file.

    ``target`` is the most specific module the statement names (``from hopmem.memory import store`` names
    ``hopmem.memory.store`` when that module exists, ``from hopmem.memory import MemoryStore`` names the package
    ``hopmem.memory``). ``at_import`` is false for imports inside functions and under ``if TYPE_CHECKING:``.
    """

    source: str
    target: str
    path: Path
    line: int
    at_import: bool


def source_modules(root: Path, dirs: Mapping[str, str]) -> dict[str, Path]:
    """Every ``.py`` file under the mapped folders of ``root``, keyed by its module name."""
    modules: dict[str, Path] = {}
    for package, folder in dirs.items():
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def part_of(module: str, dirs: Mapping[str, str]) -> str | None:
    """The part a module belongs to (``memory``, ``agents``, ..., ``sdk`` for the root); None outside hopmem."""
    if module != ROOT_PACKAGE and not module.startswith(ROOT_PACKAGE + "."):
        return None
    best = ROOT_PACKAGE
    for package in dirs:
        if (module == package or module.startswith(package + ".")) and len(package) > len(best):
            best = package
    return SDK if best == ROOT_PACKAGE else best.rsplit(".", 1)[-1]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, at_import: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Yield every import statement under ``node`` with whether it runs when the module is imported."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, at_import
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, False)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk_stmt(stmt, False)
            for stmt in child.orelse:
                yield from _walk_stmt(stmt, at_import)
        else:
            yield from _walk(child, at_import)


def _walk_stmt(stmt: ast.stmt, at_import: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        yield stmt, at_import
    else:
        yield from _walk(ast.Module(body=[stmt], type_ignores=[]), at_import)


def _known(name: str, modules: Mapping[str, Path]) -> str:
    """The longest prefix of ``name`` that is a module of the tree (the name itself when it is unknown)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return name


def collect_imports(root: Path, dirs: Mapping[str, str] | None = None) -> list[ImportEdge]:
    """Every import of a ``hopmem`` module in the tree under ``root``, relative imports resolved."""
    dirs = package_dirs(root) if dirs is None else dirs
    modules = source_modules(root, dirs)
    edges: list[ImportEdge] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for stmt, at_import in _walk(tree, True):
            targets: list[str] = []
            if isinstance(stmt, ast.Import):
                targets = [alias.name for alias in stmt.names]
            else:
                if stmt.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[: len(base_parts) - (stmt.level - 1)]
                    base = ".".join(base_parts + ([stmt.module] if stmt.module else []))
                else:
                    base = stmt.module or ""
                for alias in stmt.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                if part_of(target, dirs) is None:
                    continue
                edges.append(ImportEdge(module, _known(target, modules), path, stmt.lineno, at_import))
    return edges


def rule_violations(root: Path, dirs: Mapping[str, str] | None = None) -> list[str]:
    """One line per import that goes against :data:`ALLOWED`, e.g. ``memory/x.py:3: hopmem.memory.x (memory)
    imports hopmem.agents.graph (agents)``."""
    dirs = package_dirs(root) if dirs is None else dirs
    found = []
    for edge in collect_imports(root, dirs):
        src, dst = part_of(edge.source, dirs), part_of(edge.target, dirs)
        assert src is not None and dst is not None
        if dst not in ALLOWED[src]:
            where = f"{edge.path.relative_to(root)}:{edge.line}"
            found.append(f"{where}: {edge.source} ({src}) imports {edge.target} ({dst})")
    return sorted(found)


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in no particular order, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def import_cycles(root: Path, dirs: Mapping[str, str] | None = None, *, deferred: bool = False) -> list[list[str]]:
    """Groups of two or more modules that import each other, counting imports that run at import time.

    With ``deferred`` the imports inside functions and under ``if TYPE_CHECKING:`` count too: such a cycle cannot
    break an import, but it still means two modules that cannot be understood apart.
    """
    graph: dict[str, set[str]] = {}
    for edge in collect_imports(root, dirs):
        graph.setdefault(edge.source, set())
        graph.setdefault(edge.target, set())
        if (edge.at_import or deferred) and edge.target != edge.source:
            graph[edge.source].add(edge.target)
    return sorted(c for c in _strongly_connected(graph) if len(c) > 1)


# --- the real source ---------------------------------------------------------------------------------------------


def test_every_part_imports_only_what_design_allows() -> None:
    violations = rule_violations(REPO)
    assert not violations, "imports against DESIGN.md's dependency direction:\n" + "\n".join(violations)


def test_checker_sees_the_real_tree() -> None:
    """Guards the rule test against passing vacuously (a wrong root or mapping would find no imports)."""
    edges = collect_imports(REPO)
    parts = {part_of(e.source, package_dirs(REPO)) for e in edges}
    assert {"memory", "agents", "finetune", SDK, "app"} <= parts
    assert any(
        part_of(e.source, package_dirs(REPO)) == "app" and part_of(e.target, package_dirs(REPO)) == SDK for e in edges
    )
    assert any(not e.at_import for e in edges)  # imports inside functions are read too


def test_no_import_cycles() -> None:
    cycles = import_cycles(REPO)
    assert not cycles, "modules that import each other at import time:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_import_cycles_through_deferred_imports() -> None:
    """Stricter than the cycle rule: imports inside functions count too (issue 19 removed the last two such cycles,
    agents/rerank.py with its backends and memory/store.py with memory/lexical_index.py)."""
    cycles = import_cycles(REPO, deferred=True)
    assert not cycles, "modules that import each other (deferred imports too):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


# --- the checkers catch a broken rule -------------------------------------------------------------------------------

SYNTHETIC_DIRS = {"hopmem": "sdk", "hopmem.memory": "memory", "hopmem.agents": "agents", "hopmem.app": "app"}


def _tree(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in SYNTHETIC_DIRS.values():
        (root / folder).mkdir(exist_ok=True)
        (root / folder / "__init__.py").touch()
    return root


def test_rule_checker_reports_memory_importing_agents(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "memory/store.py": "from __future__ import annotations\n\ndef f():\n    from hopmem.agents import graph\n",
            "agents/graph.py": "from hopmem.memory.store import f\n",
        },
    )
    assert rule_violations(root, SYNTHETIC_DIRS) == [
        "memory/store.py:4: hopmem.memory.store (memory) imports hopmem.agents.graph (agents)"
    ]


def test_rule_checker_resolves_relative_imports_and_guards_app(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "memory/sub/a.py": "from .. import errors\nfrom ...agents import x\n",
            "memory/errors.py": "",
            "agents/x.py": "import hopmem.app.cli\n",
            "app/cli.py": "from hopmem import settings\nfrom hopmem.memory.errors import E\n",
            "sdk/settings.py": "",
        },
    )
    violations = rule_violations(root, SYNTHETIC_DIRS)
    assert violations == [
        "agents/x.py:1: hopmem.agents.x (agents) imports hopmem.app.cli (app)",
        "memory/sub/a.py:2: hopmem.memory.sub.a (memory) imports hopmem.agents.x (agents)",
    ]


def test_cycle_checker_reports_a_two_module_cycle(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "memory/store.py": "from hopmem.memory.lexical import Index\n",
            "memory/lexical.py": "from hopmem.memory import store\n",
            "memory/ok.py": "from hopmem.memory import lazy\n",
            "memory/lazy.py": "def f():\n    from hopmem.memory import ok\n",  # inside a function: deferred only
            "memory/typed.py": (
                "from typing import TYPE_CHECKING\nimport hopmem.memory.store\n"
                "if TYPE_CHECKING:\n    from hopmem.memory import typed_user\n"
            ),
            "memory/typed_user.py": "from hopmem.memory import typed\n",
        },
    )
    assert import_cycles(root, SYNTHETIC_DIRS) == [["hopmem.memory.lexical", "hopmem.memory.store"]]
    assert import_cycles(root, SYNTHETIC_DIRS, deferred=True) == [
        ["hopmem.memory.lazy", "hopmem.memory.ok"],
        ["hopmem.memory.lexical", "hopmem.memory.store"],
        ["hopmem.memory.typed", "hopmem.memory.typed_user"],
    ]
