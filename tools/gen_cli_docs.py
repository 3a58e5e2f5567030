"""Write docs/cli.md, the reference of every ``hopmem`` command, from the CLI itself.

The page is generated, not written by hand, so that it cannot drift from the code: ``tests/test_docs.py`` checks that
every command and option appears in it and that it equals this script's output. Run it after changing a command:

    .venv/bin/python tools/gen_cli_docs.py           # rewrite docs/cli.md
    .venv/bin/python tools/gen_cli_docs.py --check   # exit 1 when docs/cli.md is out of date

It walks the click command tree that typer builds (``typer.main.get_command``) and takes each command's help, usage,
arguments and options as ``hopmem COMMAND --help`` shows them (without rich's boxes).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

REPO = Path(__file__).resolve().parents[1]
CLI_MD = REPO / "docs" / "cli.md"
log = logging.getLogger("gen_cli_docs")

HEADER = """\
# CLI reference

Every `hopmem` command with its help, usage, arguments and options, as `hopmem COMMAND --help` prints them. Options
of `hopmem` itself (`--data-dir`, `--tenant`, `--llm-backend`, `--verbose`) go before the command:
`hopmem --tenant alice memory search "budget"`. Settings not given as options come from `HOPMEM_*` variables and the
TOML file ([configuration.md](configuration.md)).

This page is generated from the CLI by `tools/gen_cli_docs.py` (run it after changing a command);
`tests/test_docs.py` fails when a command or an option is missing here or the page differs from the generated one.
"""


@dataclass
class CommandDoc:
    """What the reference says about one command: its path (``hopmem memory add``) and its help parts."""

    path: str
    help: str
    usage: str
    arguments: list[tuple[str, str, bool]] = field(default_factory=list)  # name, help, required
    options: list[tuple[str, str]] = field(default_factory=list)  # declaration ("-q, --quiet"), help
    subcommands: list[tuple[str, str]] = field(default_factory=list)  # name, short help


def walk(command: Any, path: list[str], parent: Any = None) -> list[CommandDoc]:
    """Every command under ``command`` (itself first), in the order ``--help`` lists them.

    Args:
        command: a click command or group as typer builds it (typer vendors its own click, so the walk duck-types:
            a group is anything with ``list_commands``).
        path: the words that call it, e.g. ``["hopmem", "memory"]``.
        parent: the parent's click context, so that usage lines carry the full path.
    """
    ctx = command.context_class(command, info_name=path[-1], parent=parent)
    # The usage line is joined here rather than taken from get_usage, which wraps it to the terminal's width.
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    doc = CommandDoc(path=" ".join(path), help=(command.help or "").strip(), usage=usage)
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            doc.arguments.append((param.name, (getattr(param, "help", None) or "").strip(), bool(param.required)))
        elif param.param_type_name == "option" and "--help" not in param.opts:
            record = param.get_help_record(ctx)
            if record is not None:
                doc.options.append((record[0], record[1].strip()))
    docs = [doc]
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            summary = sub.short_help or (sub.help or "").strip().split("\n\n")[0]
            doc.subcommands.append((name, summary))
            docs.extend(walk(sub, [*path, name], ctx))
    return docs


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_command(doc: CommandDoc) -> str:
    """One section of the page: heading, help text, usage, arguments, options, subcommands."""
    lines = [f"## `{doc.path}`", ""]
    if doc.help:
        lines += [doc.help, ""]
    lines += ["```", doc.usage, "```", ""]
    if doc.arguments:
        lines += ["| argument | required | help |", "|---|---|---|"]
        lines += [f"| `{name}` | {'yes' if req else 'no'} | {_cell(text)} |" for name, text, req in doc.arguments]
        lines.append("")
    if doc.options:
        lines += ["| option | help |", "|---|---|"]
        lines += [f"| `{_cell(decl)}` | {_cell(text)} |" for decl, text in doc.options]
        lines.append("")
    if doc.subcommands:
        lines += ["| command | what it does |", "|---|---|"]
        lines += [f"| `{doc.path} {name}` | {_cell(text)} |" for name, text in doc.subcommands]
        lines.append("")
    return "\n".join(lines)


def render(app: typer.Typer, name: str = "hopmem") -> str:
    """The whole page for ``app``: the header, a list of commands, then one section per command."""
    docs = walk(typer.main.get_command(app), [name])
    contents = ["## Commands", ""] + [f"- [`{doc.path}`](#{doc.path.replace(' ', '-')})" for doc in docs] + [""]
    return "\n".join([HEADER, *contents, *(render_command(doc) for doc in docs)]).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/cli.md differs from the CLI")
    parser.add_argument("--output", type=Path, default=CLI_MD)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from hopmem.app.cli import app

    text = render(app)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            log.error("%s is out of date: run tools/gen_cli_docs.py", args.output)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    log.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
