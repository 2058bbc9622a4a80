"""The service's tables (SQLAlchemy 2 ORM). The schema itself is owned by the Alembic
migrations in ``migrations/``; these classes must match them (a test checks)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: a search's states; the terminal ones never change again except by an explicit resume
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
ACTIVE = (QUEUED, RUNNING)
#: a watch's tick: waiting to read its source, waiting for its search, or over (see ``outcome``)
PENDING, SEARCHING, DONE = "pending", "searching", "done"
OPEN_TICK = (PENDING, SEARCHING)
#: a webhook delivery's states
DELIVERING, DELIVERED, GAVE_UP = "pending", "delivered", "failed"
#: token scopes, weakest first
SCOPES = ("read", "write", "admin")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive ones)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class Token(Base):
    """An API token. Only the SHA-256 of the secret is kept; ``prefix`` identifies it in lists."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    scope: Mapped[str] = mapped_column(String(10))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Search(Base):
    """One search: its config, where it runs, and where it stands."""

    __tablename__ = "searches"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[str] = mapped_column(Text)  # the submitted config as validated and stored (YAML)
    request_hash: Mapped[str] = mapped_column(String(64))  # of the submitted body: idempotent creation
    state: Mapped[str] = mapped_column(String(12), index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    out_dir: Mapped[str] = mapped_column(Text)
    ray_job_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # submissions since creation or the last resume
    submissions: Mapped[int] = mapped_column(Integer, default=0)  # all submissions: names each Ray job apart
    progress: Mapped[dict] = mapped_column(JSON, default=dict)  # read from the Optuna storage by the reconciler
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Transition(Base):
    """A search's state change, with why it happened."""

    __tablename__ = "transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[str] = mapped_column(ForeignKey("searches.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(12), nullable=True)
    to_state: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    """One mutating call or refused call: who, what, on which search, and the answer's status."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    client: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class Watch(Base):
    """A source watched on a schedule: each change starts a child search, and a gate decides
    whether its best soup becomes the champion."""

    __tablename__ = "watches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[dict] = mapped_column(JSON)  # kind "leaderboard" | "folder", and its settings
    template: Mapped[str] = mapped_column(Text)  # the run config without candidates (YAML)
    schedule: Mapped[dict] = mapped_column(JSON)  # {"cron": expr} | {"interval_s": n} | {} (manual only)
    policy: Mapped[dict] = mapped_column(JSON)  # the promotion gate and what a promotion keeps
    webhooks: Mapped[list] = mapped_column(JSON, default=list)
    #: signs webhook bodies (HMAC-SHA256); kept as is, since signing needs it
    secret: Mapped[str] = mapped_column(String(64))
    deleted: Mapped[bool] = mapped_column(default=False)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    #: the source revision the last search ran on, and that search (the next child's parent)
    revision: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    last_search_id: Mapped[str | None] = mapped_column(ForeignKey("searches.id"), nullable=True)
    champion_search_id: Mapped[str | None] = mapped_column(ForeignKey("searches.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Tick(Base):
    """One firing of a watch, scheduled or manual: what its source said, the search it started,
    and the gate's decision. A row is created once per due time (unique), so a tick fires once."""

    __tablename__ = "ticks"
    __table_args__ = (UniqueConstraint("watch_id", "due_at", name="uq_ticks_watch_due"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    watch_id: Mapped[int] = mapped_column(ForeignKey("watches.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # scheduled | manual
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(12), index=True)
    #: no_change | source_error | search_failed | promoted | kept | deleted
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    revision: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    diff: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    notes: Mapped[list] = mapped_column(JSON, default=list)
    search_id: Mapped[str | None] = mapped_column(ForeignKey("searches.id"), nullable=True)
    parent_search_id: Mapped[str | None] = mapped_column(ForeignKey("searches.id"), nullable=True)
    lineage: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # carried / seeded / fresh trials
    decision: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # the promotion gate's numbers
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Lease(Base):
    """A named lease: only its holder runs the scheduler, until it lapses."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Delivery(Base):
    """One webhook event for one URL, and its delivery attempts."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    watch_id: Mapped[int] = mapped_column(ForeignKey("watches.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
