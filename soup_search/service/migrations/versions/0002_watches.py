"""watches: watches, their ticks, the scheduler's lease, webhook deliveries

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("tokens.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("source", sa.JSON, nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("schedule", sa.JSON, nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("webhooks", sa.JSON, nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("next_run_at", TS, nullable=True, index=True),
        sa.Column("revision", sa.JSON, nullable=True),
        sa.Column("last_search_id", sa.String(64), sa.ForeignKey("searches.id"), nullable=True),
        sa.Column("champion_search_id", sa.String(64), sa.ForeignKey("searches.id"), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "ticks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("watch_id", sa.Integer, sa.ForeignKey("watches.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("state", sa.String(12), nullable=False, index=True),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("revision", sa.JSON, nullable=True),
        sa.Column("diff", sa.JSON, nullable=True),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("search_id", sa.String(64), sa.ForeignKey("searches.id"), nullable=True),
        sa.Column("parent_search_id", sa.String(64), sa.ForeignKey("searches.id"), nullable=True),
        sa.Column("lineage", sa.JSON, nullable=True),
        sa.Column("decision", sa.JSON, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.UniqueConstraint("watch_id", "due_at", name="uq_ticks_watch_due"),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("watch_id", sa.Integer, sa.ForeignKey("watches.id"), nullable=False, index=True),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(12), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False, index=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
    )


def downgrade() -> None:
    for table in ("deliveries", "leases", "ticks", "watches"):
        op.drop_table(table)
