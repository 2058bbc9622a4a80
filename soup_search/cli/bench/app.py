"""The ``bench`` command group: performance benchmarks that print figures."""

from __future__ import annotations

import typer

bench_app = typer.Typer(help="Benchmarks of the merge and search hot paths.", no_args_is_help=True)
