"""The service database: one SQLAlchemy engine, its sessions, and the Alembic upgrade.

SQLite (the default, a file in the data dir) and PostgreSQL URLs both work. SQLite runs in
WAL mode with a busy timeout, so the reconciler thread writes while requests read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from soup_search.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")


def default_url(data_dir: str | Path) -> str:
    return f"sqlite:///{(Path(data_dir) / 'service.sqlite').resolve()}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a URL SQLAlchemy cannot use is refused in one line."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise ConfigError("--db", [f"cannot use database URL {url!r} ({exc}); give sqlite:///PATH or "
                                   "postgresql+psycopg://USER@HOST:PORT/DB"]) from None
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    cfg = alembic_config()
    try:
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise ConfigError("--db", [f"cannot reach the database {engine.url.render_as_string()} "
                                   f"({str(exc.orig).strip().splitlines()[0]}); check --db"]) from None


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class Database:
    """The engine and its session factory; ``with db.session() as s:`` commits on success."""

    def __init__(self, url: str, upgrade: bool = True):
        self.url = url
        self.engine = make_engine(url)
        if upgrade:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    def close(self) -> None:
        self.engine.dispose()
