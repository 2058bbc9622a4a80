"""CLI commands: ``bench`` (performance benchmarks that print figures), one module per command."""

from __future__ import annotations

import typer

from soup_search.cli.bench import demo, gpu, lineage, merge, methods, scoring, search, service, startup  # noqa: F401  (each adds its command)
from soup_search.cli.bench.app import bench_app


def register(app: typer.Typer) -> None:
    """Add the bench commands to the main app."""
    app.add_typer(bench_app, name="bench")
