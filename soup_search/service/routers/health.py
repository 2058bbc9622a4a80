"""``/healthz`` (no auth) and ``/metrics`` (Prometheus text: searches by state, queue, trials)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from soup_search.service.deps import services
from soup_search.service.models import QUEUED, STATES, Search

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(svc=Depends(services)):
    try:
        with svc.db.session() as s:
            s.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "unhealthy", "error": f"database: {type(exc).__name__}"}, status_code=503)
    return {"status": "ok"}


class SearchCollector:
    def __init__(self, db):
        self.db = db

    def collect(self):
        with self.db.session() as s:
            by_state = dict(s.execute(select(Search.state, func.count()).group_by(Search.state)).all())
            progress = list(s.scalars(select(Search.progress)))
        states = GaugeMetricFamily("soup_search_searches", "searches by state", labels=["state"])
        for state in STATES:
            states.add_metric([state], by_state.get(state, 0))
        yield states
        yield GaugeMetricFamily("soup_search_queue_length", "searches waiting to run", value=by_state.get(QUEUED, 0))
        trials = sum(int((p or {}).get("trials") or 0) for p in progress)
        yield GaugeMetricFamily("soup_search_trials_completed", "trials completed, over all searches", value=trials)


@router.get("/metrics")
def metrics(svc=Depends(services)):
    registry = CollectorRegistry()
    registry.register(SearchCollector(svc.db))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
