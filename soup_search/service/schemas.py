"""The API's JSON shapes (pydantic), apart from the tables."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, field_validator

from soup_search.service.models import Search


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
