"""``soup-search serve`` and ``soup-search tokens``: the service and its API tokens."""

from __future__ import annotations

from pathlib import Path

import typer

tokens_app = typer.Typer(help="Create, list and revoke the service's API tokens (only hashes are stored).",
                         no_args_is_help=True)

DATA_DIR = typer.Option(None, "--data-dir", help="the service's data folder (default: the user data dir)")
DB = typer.Option(None, "--db", help="database URL (default: sqlite in --data-dir; postgresql+psycopg://... works)")


def _settings(**given):
    from soup_search.service.settings import Settings

    return Settings(**{k: v for k, v in given.items() if v not in (None, [], ())})


def serve(
    host: str = typer.Option(None, "--host", help="address to bind (default 127.0.0.1)"),
    port: int = typer.Option(None, "--port", help="port (default 8000)"),
    db: str = DB,
    ray_address: str = typer.Option(None, "--ray-address", help="a cluster's job server (http://HEAD:8265); "
                                    "default: start a local head with the job server"),
    data_dir: Path = DATA_DIR,
    max_running: int = typer.Option(None, "--max-running", help="searches that run at once (default 1)"),
    max_attempts: int = typer.Option(None, "--max-attempts", help="submissions of a search before it fails (default 3)"),
    allowed_root: list[Path] = typer.Option(None, "--allowed-root",
                                            help="folder that submitted configs may name files under (repeat; default DATA_DIR/inputs)"),
    reconcile_s: float = typer.Option(None, "--reconcile-s", help="seconds between reconcile passes (default 2)"),
    scheduler_s: float = typer.Option(None, "--scheduler-s", help="seconds between watch scheduler passes (default 5)"),
    lease_s: float = typer.Option(None, "--lease-s", help="seconds the scheduler lease holds unrenewed (default 30)"),
) -> None:
    """Run the search service: an authenticated HTTP API that runs searches as Ray Jobs."""
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "token")  # before Ray is imported: it reads the mode once
    from soup_search.service.server import serve as run_server

    run_server(_settings(host=host, port=port, db=db, ray_address=ray_address, data_dir=data_dir,
                         max_running=max_running, max_attempts=max_attempts,
                         allowed_roots=tuple(allowed_root or ()), reconcile_s=reconcile_s,
                         scheduler_s=scheduler_s, lease_s=lease_s))


def _database(data_dir: Path | None, db: str | None):
    from soup_search.service.db import Database

    settings = _settings(data_dir=data_dir, db=db)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Database(settings.db_url)


def _audit(s, action: str) -> None:
    from soup_search.service.models import AuditEvent, utcnow

    s.add(AuditEvent(at=utcnow(), token_id=None, method="CLI", path="tokens", status=0, client="cli", detail=action))


@tokens_app.command("create")
def tokens_create(name: str = typer.Option(..., "--name", help="who or what uses the token"),
                  scope: str = typer.Option("write", "--scope", help="read | write | admin"),
                  data_dir: Path = DATA_DIR, db: str = DB) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from soup_search.service.tokens import create_token

    database = _database(data_dir, db)
    with database.session() as s:
        token, secret = create_token(s, name, scope)
        _audit(s, f"create token {name} ({scope})")
    typer.echo(secret)
    typer.echo(f"token {token.name!r} ({token.scope}) created; it is shown only now", err=True)


@tokens_app.command("list")
def tokens_list(data_dir: Path = DATA_DIR, db: str = DB) -> None:
    """List the tokens (name, scope, prefix, created, revoked)."""
    from rich.console import Console
    from rich.table import Table

    from soup_search.service.tokens import list_tokens

    table = Table("name", "scope", "prefix", "created", "revoked")
    with _database(data_dir, db).session() as s:
        for t in list_tokens(s):
            table.add_row(t.name, t.scope, t.prefix + "…", f"{t.created_at:%Y-%m-%d %H:%M}",
                          f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    Console().print(table)


@tokens_app.command("revoke")
def tokens_revoke(name: str = typer.Argument(..., help="the token's name"), data_dir: Path = DATA_DIR, db: str = DB) -> None:
    """Revoke a token: every call with it is refused from now on."""
    from soup_search.service.tokens import revoke_token

    with _database(data_dir, db).session() as s:
        revoke_token(s, name)
        _audit(s, f"revoke token {name}")
    typer.echo(f"token {name!r} revoked")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(tokens_app, name="tokens")
