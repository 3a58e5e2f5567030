"""The CLI reference (docs/cli.md) names every command and option of ``hopmem``, and the docs' links resolve.

Like sqlite-utils' documentation tests: the checker walks the click command tree that typer builds and looks each
command path up among the page's headings, then each of the command's long options inside that heading's section.
It is independent of ``tools/gen_cli_docs.py`` (which writes the page), so a page edited by hand is checked too; a
second test asks that the page equals the generator's output, so help texts cannot drift either.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import pytest
import typer

from hopmem.app.cli import app

REPO = Path(__file__).resolve().parents[1]
CLI_MD = REPO / "docs" / "cli.md"
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")


def command_options(app: typer.Typer, name: str = "hopmem") -> dict[str, list[str]]:
    """Every command path (``hopmem memory add``) with its long options (``--tenant``, ``--no-decompose``).

    ``--help`` is left out (every command has it). typer vendors its own click, so groups are found by duck typing.
    """
    found: dict[str, list[str]] = {}

    def walk(command: Any, path: list[str], parent: Any) -> None:
        ctx = command.context_class(command, info_name=path[-1], parent=parent)
        found[" ".join(path)] = [
            opt
            for param in command.get_params(ctx)
            if param.param_type_name == "option" and not param.hidden
            for opt in [*param.opts, *param.secondary_opts]
            if opt.startswith("--") and opt != "--help"
        ]
        if hasattr(command, "list_commands"):
            for sub_name in command.list_commands(ctx):
                sub = command.get_command(ctx, sub_name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, sub_name], ctx)

    walk(typer.main.get_command(app), [name], None)
    return found


def sections(markdown: str) -> dict[str, str]:
    """The text under each heading (up to the next heading of any level), keyed by the heading without backticks."""
    result: dict[str, str] = {}
    title: str | None = None
    body: list[str] = []
    in_code = False
    for line in [*markdown.splitlines(), "# end"]:
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else HEADING.match(line)
        if match:
            if title is not None:
                result[title] = "\n".join(body)
            title, body = match.group(2).replace("`", "").strip(), []
        else:
            body.append(line)
    return result


def undocumented(app: typer.Typer, markdown: str, name: str = "hopmem") -> list[str]:
    """What the page lacks: ``"hopmem x: no section"`` or ``"hopmem x: --opt"`` for each missing piece."""
    by_title = sections(markdown)
    missing = []
    for path, options in command_options(app, name).items():
        if path not in by_title:
            missing.append(f"{path}: no section")
            continue
        missing += [
            f"{path}: {opt}"
            for opt in options
            if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", by_title[path])
        ]
    return missing


def test_every_command_and_option_is_in_cli_md() -> None:
    missing = undocumented(app, CLI_MD.read_text(encoding="utf-8"))
    assert not missing, "docs/cli.md lacks (run tools/gen_cli_docs.py):\n" + "\n".join(missing)


def test_the_walk_finds_the_real_commands() -> None:
    """Guards against a vacuous pass: the walk must reach nested commands and global options."""
    found = command_options(app)
    assert "--tenant" in found["hopmem"]
    assert "--no-decompose" in found["hopmem eval qa"]
    assert "hopmem memory quarantine approve" in found


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", REPO / "tools" / "gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_cli_md_is_the_generated_page() -> None:
    expected = _generator().render(app)
    assert CLI_MD.read_text(encoding="utf-8") == expected, "docs/cli.md is out of date: run tools/gen_cli_docs.py"


# --- the checker catches what is missing ----------------------------------------------------------------------------


def _tiny_app() -> typer.Typer:
    tiny = typer.Typer(add_completion=False)
    sub = typer.Typer()
    tiny.add_typer(sub, name="memory")

    @tiny.callback()
    def _root(tenant: Annotated[str, typer.Option(help="tenant")] = "t") -> None:
        """Tiny."""

    @sub.command("add")
    def _add(
        text: str, tag: Annotated[str, typer.Option()] = "", json: Annotated[bool, typer.Option("--json")] = False
    ) -> None:
        """Add."""

    @sub.command("erase")
    def _erase(all_: Annotated[bool, typer.Option("--all/--keep")] = False) -> None:
        """Erase."""

    return tiny


DOC = """# tiny
## `tiny`
`--tenant`
## `tiny memory`
## `tiny memory add`
`--tag` and `--json`
## `tiny memory erase`
`--all` / `--keep`
"""


def test_checker_passes_a_complete_page() -> None:
    assert undocumented(_tiny_app(), DOC, "tiny") == []


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (DOC.replace("## `tiny memory erase`\n`--all` / `--keep`\n", ""), ["tiny memory erase: no section"]),
        (DOC.replace("`--tag` and ", ""), ["tiny memory add: --tag"]),
        # an option named only in another command's section does not count
        (
            DOC.replace("`--tag` and `--json`", "").replace("`--tenant`", "`--tenant` `--tag` `--json`"),
            ["tiny memory add: --tag", "tiny memory add: --json"],
        ),
        (DOC.replace("/ `--keep`", "/ `--keeping`"), ["tiny memory erase: --keep"]),
        # a heading inside a code block is not a section
        (DOC.replace("## `tiny memory`\n", "```\n## `tiny memory`\n```\n"), ["tiny memory: no section"]),
    ],
)
def test_checker_reports_what_is_missing(doc: str, expected: list[str]) -> None:
    assert undocumented(_tiny_app(), doc, "tiny") == expected


# --- links between the pages ----------------------------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes from a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    return {re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-") for title in sections(page.read_text("utf-8"))}


def broken_links(page: Path) -> list[str]:
    """Relative links of a Markdown page (to files, images, folders and headings) that point at nothing."""
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = page.parent / path if path else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in anchors(linked)):
            broken.append(f"{page.name}: {target}")
    return broken


def test_links_of_readme_and_docs_resolve() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = [link for page in pages for link in broken_links(page)]
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_link_checker_reports_missing_files_and_headings(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n## `hopmem x`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[ok](other.md#hopmem-x) [ok](#page) [ok](https://example.org/x.md)\n"
        "[gone](missing.md) [no heading](other.md#nope) [no heading here](#nope)\n"
    )
    assert broken_links(page) == ["page.md: missing.md", "page.md: other.md#nope", "page.md: #nope"]


# --- module and file paths named in the pages exist -----------------------------------------------------------------

PACKAGE_DIRS = {
    "hopmem": "sdk",
    "hopmem.memory": "memory",
    "hopmem.agents": "agents",
    "hopmem.finetune": "finetune",
    "hopmem.app": "app",
    "hopmem.ui": "ui",
}
MODULE_NAME = re.compile(r"(?<![\w./-])hopmem(?:\.[A-Za-z_]\w*)+")
REPO_PATH = re.compile(r"(?<![\w./-])((?:sdk|memory|agents|finetune|app|ui|tools|tests|docs|notebooks)/[\w./-]*\w/?)")


def module_file(name: str, root: Path = REPO) -> Path | None:
    """The source file of module ``name`` (a package's ``__init__.py``), or None when there is none."""
    for package in sorted(PACKAGE_DIRS, key=len, reverse=True):
        if name == package or name.startswith(package + "."):
            base = root / PACKAGE_DIRS[package] / Path(*name[len(package) :].lstrip(".").split("."))
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    return candidate
            return None
    return None


def _top_level_names(source: Path) -> set[str]:
    """Names a module defines or imports at its top level, and the lazy names of a PEP 562 ``_EXPORTS`` table."""
    names: set[str] = set()
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
            if any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in targets) and isinstance(
                node.value, ast.Dict
            ):
                names.update(
                    k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)
                )
    return names


def stale_references(text: str, root: Path = REPO) -> list[str]:
    """``hopmem.x.y`` names and repository paths (``agents/graph.py``) in ``text`` that no longer exist.

    A dotted name is good when its longest module prefix exists and the next part, if any, is a name that module
    defines (``hopmem.agents.rerank.Reranker``); words like ``hopmem.toml`` and ``hopmem.sqlite`` are file names, not
    modules, and are skipped.
    """
    stale = []
    for name in sorted(set(MODULE_NAME.findall(text))):
        if name in {"hopmem.toml", "hopmem.sqlite"}:
            continue
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            source = module_file(".".join(parts[:end]), root)
            if source is not None:
                if end < len(parts) and parts[end] not in _top_level_names(source):
                    stale.append(name)
                break
    for path in sorted(set(REPO_PATH.findall(text))):
        if not (root / path).exists():
            stale.append(path)
    return stale


def test_module_and_file_paths_in_the_pages_exist() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    stale = [f"{page.name}: {ref}" for page in pages for ref in stale_references(page.read_text(encoding="utf-8"))]
    assert not stale, "the pages name modules or files that do not exist:\n" + "\n".join(stale)


def test_stale_reference_checker_reports_moved_modules_and_files() -> None:
    text = (
        "`hopmem.agents.graph` `hopmem.Memory` `hopmem.memory.store.MemoryStore` `hopmem.toml` `agents/graph.py` "
        "`memory/` `hopmem.agents.no_such_module` `hopmem.memory.store.NoSuchClass` `agents/no_such.py`"
    )
    assert stale_references(text) == [
        "hopmem.agents.no_such_module",
        "hopmem.memory.store.NoSuchClass",
        "agents/no_such.py",
    ]
