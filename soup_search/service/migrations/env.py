"""Alembic environment: runs on the connection that :func:`soup_search.service.db.migrate` passes."""

from alembic import context

from soup_search.service.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
