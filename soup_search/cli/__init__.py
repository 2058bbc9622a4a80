"""The ``soup-search`` command line.

Each command group lives in its own module with a ``register(app)`` function, so that
command modules stay small and import heavy libraries (torch, ray) only when run.
Every :class:`~soup_search.errors.SoupSearchError` becomes a one-line message and exit 2.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from soup_search.errors import SoupSearchError

COMMAND_MODULES = ("zoo", "merge", "profile", "analyze", "run", "bench", "serve", "remote", "watches", "curves", "recur")

app = typer.Typer(
    name="soup-search",
    help="Find the best model soup for a categorised benchmark (SoCE), distributed on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)



@app.callback()
def _root() -> None:
    """Find the best model soup for a categorised benchmark (SoCE), distributed on Ray."""


@app.command()
def version() -> None:
    """Print the soup-search version."""
    from soup_search import __version__

    typer.echo(__version__)


for _name in COMMAND_MODULES:
    importlib.import_module(f"soup_search.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning user errors into exit code 2."""
    try:
        app(args=argv)
    except SoupSearchError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]")
        sys.exit(130)
