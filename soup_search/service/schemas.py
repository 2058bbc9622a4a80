"""The API's JSON shapes (pydantic), apart from the tables."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, field_validator

from soup_search.service.models import Delivery, Search, Tick, Watch


class Progress(BaseModel):
    trials: int = 0
    budget: int | None = None
    best_dev: float | None = None
    trials_per_min: float | None = None


class SearchOut(BaseModel):
    id: str
    name: str
    owner: str
    state: str
    reason: str | None
    progress: Progress
    attempts: int
    ray_job_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    storage: str  # the Optuna storage URL: optuna-dashboard URL shows the trials
    links: dict[str, str]

    @field_validator("created_at", "started_at", "finished_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """SQLite drops the zone that PostgreSQL keeps: every time is UTC."""
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value

    @classmethod
    def of(cls, search: Search, owner: str, storage: str, artifacts: list[str]) -> "SearchOut":
        base = f"/v1/searches/{search.id}"
        links = {"self": base, "logs": f"{base}/logs"} | {a: f"{base}/{a}" for a in artifacts}
        return cls(id=search.id, name=search.name, owner=owner, state=search.state, reason=search.reason,
                   progress=Progress(**(search.progress or {})), attempts=search.attempts,
                   ray_job_id=search.ray_job_id, created_at=search.created_at, started_at=search.started_at,
                   finished_at=search.finished_at, updated_at=search.updated_at, storage=storage, links=links)


class SearchList(BaseModel):
    searches: list[SearchOut]


class ErrorOut(BaseModel):
    error: str
    problems: list[str] | None = None


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class WatchOut(BaseModel):
    id: int
    name: str
    owner: str
    source: dict
    schedule: dict
    policy: dict
    webhooks: list[str]
    next_run_at: datetime | None
    revision: str | None  # the source revision of the last search
    last_search: str | None
    champion_search: str | None
    created_at: datetime
    links: dict[str, str]
    #: shown once, in the answer to the creation: it signs the webhooks
    secret: str | None = None

    @classmethod
    def of(cls, watch: Watch, owner: str, secret: str | None = None) -> "WatchOut":
        base = f"/v1/watches/{watch.id}"
        links = {"self": base, "history": f"{base}/history", "champion": f"{base}/champion",
                 "deliveries": f"{base}/deliveries", "trigger": f"{base}/trigger"}
        return cls(id=watch.id, name=watch.name, owner=owner, source=watch.source, schedule=watch.schedule,
                   policy=watch.policy, webhooks=list(watch.webhooks or []), next_run_at=_utc(watch.next_run_at),
                   revision=(watch.revision or {}).get("id"), last_search=watch.last_search_id,
                   champion_search=watch.champion_search_id, created_at=_utc(watch.created_at), links=links,
                   secret=secret)


class WatchList(BaseModel):
    watches: list[WatchOut]


class TickOut(BaseModel):
    id: int
    kind: str
    due_at: datetime
    state: str
    outcome: str | None
    revision: str | None
    diff: dict | None
    notes: list[str]
    search: str | None
    parent_search: str | None
    lineage: dict | None
    decision: dict | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, tick: Tick) -> "TickOut":
        return cls(id=tick.id, kind=tick.kind, due_at=_utc(tick.due_at), state=tick.state, outcome=tick.outcome,
                   revision=(tick.revision or {}).get("id"), diff=tick.diff, notes=list(tick.notes or []),
                   search=tick.search_id, parent_search=tick.parent_search_id, lineage=tick.lineage,
                   decision=tick.decision, created_at=_utc(tick.created_at), finished_at=_utc(tick.finished_at))


class History(BaseModel):
    watch: str
    ticks: list[TickOut]


class DeliveryOut(BaseModel):
    id: int
    event: str
    url: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: Delivery) -> "DeliveryOut":
        return cls(id=d.id, event=d.event, url=d.url, state=d.state, attempts=d.attempts, last_status=d.last_status,
                   last_error=d.last_error, next_attempt_at=_utc(d.next_attempt_at), created_at=_utc(d.created_at),
                   delivered_at=_utc(d.delivered_at))


class Deliveries(BaseModel):
    deliveries: list[DeliveryOut]
