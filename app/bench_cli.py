"""``hopmem bench ...``: speed benchmarks that print a short table and write JSON."""

from __future__ import annotations

import typer

bench_app = typer.Typer(help="Benchmarks of the memory engine (JSON plus a short table).", no_args_is_help=True)
