"""``soup-search remote``: submit, list, follow, cancel, resume and fetch searches on a service.

The server and token come from ``--server``/``--token`` or ``SOUP_SEARCH_SERVER``/``SOUP_SEARCH_TOKEN``.
A server or connection error is one line and exit 2; ``status --follow`` exits 1 when the search
fails or is cancelled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

remote_app = typer.Typer(help="Work with searches on a soup-search service (soup-search serve).",
                         no_args_is_help=True)

Server = Annotated[str | None, typer.Option(
    "--server", help="the service's URL (default: $SOUP_SEARCH_SERVER, else http://127.0.0.1:8000)")]
Token = Annotated[str | None, typer.Option(
    "--token", help="an API token (default: $SOUP_SEARCH_TOKEN)", show_default=False)]
StateFilter = Annotated[str | None, typer.Option(
    "--state", help="only searches in this state: queued, running, succeeded, failed or cancelled")]
SearchId = Annotated[str, typer.Argument(metavar="ID", help="the search's id")]


def _client(server: str | None, token: str | None):
    from soup_search.service.client import Client

    return Client(server, token)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _progress(search: dict) -> tuple[str, str, str]:
    """(trials/budget, best dev, trials/min) as shown in the tables."""
    p = search["progress"]
    budget = p.get("budget")
    trials = f"{p.get('trials', 0)}/{budget if budget is not None else '?'}"
    best = f"{p['best_dev']:.4f}" if p.get("best_dev") is not None else "–"
    rate = f"{p['trials_per_min']:.2f}" if p.get("trials_per_min") is not None else "–"
    return trials, best, rate


def _when(stamp: str | None) -> str:
    from datetime import datetime

    if not stamp:
        return "–"
    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


STATE_STYLE = {"queued": "yellow", "running": "cyan", "succeeded": "green", "failed": "red", "cancelled": "magenta"}


def _state(search: dict) -> str:
    state = search["state"]
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


def _details(search: dict):
    """One search as a two-column grid."""
    from rich.markup import escape
    from rich.table import Table

    trials, best, rate = _progress(search)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows = [("id", escape(search["id"])), ("name", escape(search["name"])), ("owner", escape(search["owner"])),
            ("state", _state(search)), ("reason", escape(search.get("reason") or "–")),
            ("trials", trials), ("best dev", best), ("trials/min", rate), ("attempts", str(search["attempts"])),
            ("ray job", escape(search.get("ray_job_id") or "–")), ("created", _when(search["created_at"])),
            ("started", _when(search.get("started_at"))), ("finished", _when(search.get("finished_at"))),
            ("storage", escape(search["storage"])),
            ("artifacts", escape(", ".join(k for k in search["links"] if k not in ("self", "logs")) or "–"))]
    for key, value in rows:
        grid.add_row(key, value)
    return grid


@remote_app.command("submit")
def submit(config: Annotated[Path, typer.Argument(
               metavar="CONFIG.yaml", help="the search's YAML config (read here, sent as text)")],
           search_id: Annotated[str | None, typer.Option(
               "--id", help="your own id: submitting it twice creates one search")] = None,
           server: Server = None, token: Token = None) -> None:
    """Submit a search; print its id (stdout) and state."""
    with _client(server, token) as client:
        search = client.submit(config, id=search_id)
    typer.echo(search["id"])
    _console(stderr=True).print(f"search {search['id']} is {_state(search)}; follow it with "
                                f"soup-search remote status {search['id']} --follow")


@remote_app.command("list")
def list_searches(state: StateFilter = None, server: Server = None, token: Token = None) -> None:
    """List the searches, newest first."""
    from rich.markup import escape
    from rich.table import Table

    with _client(server, token) as client:
        searches = client.list(state)
    table = Table("id", "name", "owner", "state", "trials", "best dev", "trials/min", "created")
    for column in table.columns[4:7]:
        column.justify = "right"
    for search in searches:
        table.add_row(escape(search["id"]), escape(search["name"]), escape(search["owner"]), _state(search),
                      *_progress(search), _when(search["created_at"]))
    _console().print(table if searches else "no searches" + (f" in state {escape(state)}" if state else ""))


@remote_app.command("status")
def status(search_id: SearchId,
           follow: Annotated[bool, typer.Option("--follow", help="show progress until the search ends; "
                                                "exit 0 if it succeeded, 1 if it failed or was cancelled")] = False,
           server: Server = None, token: Token = None) -> None:
    """Show one search; with --follow, a progress bar until it ends."""
    from rich.markup import escape

    console = _console()
    with _client(server, token) as client:
        search = _follow(client, search_id, console) if follow else client.get(search_id)
    console.print(_details(search))
    if follow and search["state"] != "succeeded":
        _console(stderr=True).print(f"search {escape(search_id)} {search['state']}: "
                                    f"{escape(search.get('reason') or 'no reason given')}")
        raise typer.Exit(1)


def _follow(client, search_id: str, console) -> dict:
    """Draw trials/budget and the best dev score until the search is in a terminal state; the last look."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[best]}")]
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(search_id, total=None, best="")
        for search in client.follow(search_id):
            p = search["progress"]
            best = f"best dev {p['best_dev']:.4f}" if p.get("best_dev") is not None else ""
            bar.update(task, completed=p.get("trials", 0), total=p.get("budget"), best=best,
                       description=f"{search_id} {search['state']}")
    return search


@remote_app.command("cancel")
def cancel(search_id: SearchId, server: Server = None, token: Token = None) -> None:
    """Cancel a queued or running search."""
    with _client(server, token) as client:
        search = client.cancel(search_id)
    _console().print(f"search {search['id']} is {_state(search)}")


@remote_app.command("resume")
def resume(search_id: SearchId, server: Server = None, token: Token = None) -> None:
    """Resume a cancelled or failed search (its finished trials are kept)."""
    with _client(server, token) as client:
        search = client.resume(search_id)
    _console().print(f"search {search['id']} is {_state(search)}")


@remote_app.command("fetch")
def fetch(search_id: SearchId,
          folder: Annotated[Path, typer.Argument(metavar="DIR", help="a new (or empty) folder for the files")],
          force: Annotated[bool, typer.Option("--force", help="replace FOLDER if an earlier fetch wrote it")] = False,
          server: Server = None, token: Token = None) -> None:
    """Download a succeeded search's results.json, report.md, soup.yaml, plots/*.png and logs.txt."""
    from rich.markup import escape

    with _client(server, token) as client:
        out = client.fetch(search_id, folder, overwrite=force)
    _console().print(f"search {escape(search_id)}: artifacts in {escape(str(out))}")


def register(app: typer.Typer) -> None:
    app.add_typer(remote_app, name="remote")
