"""The ORM classes match the schema the Alembic migrations build (one source of truth each way)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from soup_search.service.db import Database, current_revision, default_url, head_revision
from soup_search.service.models import Base


def test_the_migrations_build_what_the_models_describe(tmp_path):
    db = Database(default_url(tmp_path))
    try:
        assert current_revision(db.engine) == head_revision()
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
    finally:
        db.close()
