"""``/v1/watches``: create, list, read, delete, trigger; a watch's history, champion and webhook deliveries."""

from __future__ import annotations

import secrets

import yaml
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from soup_search.service import schedule
from soup_search.service.champion import read_champion
from soup_search.service.deps import Caller, db_session, own, require, services
from soup_search.service.errors import APIError
from soup_search.service.models import ACTIVE, DONE, OPEN_TICK, Delivery, Search, Tick, Token, Watch, utcnow
from soup_search.service.schemas import Deliveries, DeliveryOut, History, TickOut, WatchList, WatchOut
from soup_search.service.ticks import Busy, watch_dir
from soup_search.service.watch_spec import take_watch

router = APIRouter(prefix="/v1/watches", tags=["watches"])


def show(s: Session, watch: Watch, secret: str | None = None) -> WatchOut:
    owner = s.get(Token, watch.owner_id)
    return WatchOut.of(watch, owner.name if owner else "?", secret)


def get_watch(s: Session, watch_id: int) -> Watch:
    watch = s.get(Watch, watch_id)
    if watch is None or watch.deleted:
        raise APIError(404, f"no watch {watch_id}; list them with GET /v1/watches")
    return watch


@router.post("", status_code=201, response_model=WatchOut)
async def create(request: Request, who: Caller = Depends(require("write")), svc=Depends(services)):
    body = await request.body()
    spec, _ = await run_in_threadpool(take_watch, body, request.headers.get("content-type"), svc.settings.roots)
    request.state.audit = f"create watch {spec.name}"
    secret = secrets.token_hex(32)
    with svc.db.session() as s:
        if s.scalar(select(Watch.id).where(Watch.name == spec.name)) is not None:
            raise APIError(409, f"a watch named {spec.name!r} exists; choose another name or delete it first")
        now = utcnow()
        watch = Watch(owner_id=who.id, name=spec.name, source=spec.source.model_dump(),
                      template=yaml.safe_dump(spec.template, sort_keys=False), schedule=spec.schedule,
                      policy=spec.policy.model_dump(), webhooks=spec.webhooks, secret=secret, deleted=False,
                      next_run_at=schedule.next_after(spec.schedule, now), created_at=now, updated_at=now)
        s.add(watch)
        s.flush()
        out = show(s, watch, secret)
    request.state.audit = f"create watch {out.id} ({out.name})"
    return out


@router.get("", response_model=WatchList)
def list_watches(who: Caller = Depends(require("read")), s: Session = Depends(db_session)):
    query = select(Watch).where(Watch.deleted.is_(False)).order_by(Watch.id)
    return WatchList(watches=[show(s, w) for w in s.scalars(query)])


@router.get("/{watch_id}", response_model=WatchOut)
def read(watch_id: int, who: Caller = Depends(require("read")), s: Session = Depends(db_session)):
    return show(s, get_watch(s, watch_id))


@router.delete("/{watch_id}", response_model=WatchOut)
def delete(watch_id: int, request: Request, who: Caller = Depends(require("write")), svc=Depends(services)):
    """Stop the watch: no more ticks; an open tick is closed and its search cancelled. Its
    history, searches and champion stay readable through the searches API and the data dir."""
    request.state.audit = f"delete watch {watch_id}"
    with svc.reconciler.lock, svc.db.session() as s:
        watch = get_watch(s, watch_id)
        own(watch, who)
        for tick in s.scalars(select(Tick).where(Tick.watch_id == watch.id, Tick.state.in_(OPEN_TICK))):
            if tick.search_id and (search := s.get(Search, tick.search_id)) is not None and search.state in ACTIVE:
                svc.reconciler.cancel(s, search)
            tick.state, tick.outcome, tick.finished_at = DONE, "deleted", utcnow()
        watch.deleted, watch.next_run_at = True, None
        out = show(s, watch)
    svc.wake()
    return out


@router.post("/{watch_id}/trigger", status_code=202, response_model=TickOut)
def trigger(watch_id: int, request: Request, who: Caller = Depends(require("write")), svc=Depends(services)):
    request.state.audit = f"trigger watch {watch_id}"
    with svc.db.session() as s:
        watch = get_watch(s, watch_id)
        own(watch, who)
        try:
            tick = svc.ticker.trigger(s, watch)
        except Busy as exc:
            raise APIError(409, str(exc)) from None
        out = TickOut.of(tick)
    request.state.audit = f"trigger watch {watch_id}: tick {out.id}"
    svc.scheduler.wake()
    return out


@router.get("/{watch_id}/history", response_model=History)
def history(watch_id: int, limit: int = Query(100, ge=1, le=1000), who: Caller = Depends(require("read")),
            s: Session = Depends(db_session)):
    watch = get_watch(s, watch_id)
    ticks = s.scalars(select(Tick).where(Tick.watch_id == watch.id).order_by(Tick.id.desc()).limit(limit))
    return History(watch=watch.name, ticks=[TickOut.of(t) for t in ticks])


@router.get("/{watch_id}/champion")
def champion(watch_id: int, who: Caller = Depends(require("read")), svc=Depends(services)):
    with svc.db.session() as s:
        watch = get_watch(s, watch_id)
        name = watch.name
    record = read_champion(watch_dir(svc.settings, watch_id))
    if record is None:
        raise APIError(404, f"watch {name} has no champion yet; trigger it (POST /v1/watches/{watch_id}/trigger)")
    return record | {"folder": str(watch_dir(svc.settings, watch_id) / "champion")}


@router.get("/{watch_id}/deliveries", response_model=Deliveries)
def deliveries(watch_id: int, limit: int = Query(100, ge=1, le=1000), who: Caller = Depends(require("read")),
               s: Session = Depends(db_session)):
    watch = get_watch(s, watch_id)
    rows = s.scalars(select(Delivery).where(Delivery.watch_id == watch.id).order_by(Delivery.id.desc()).limit(limit))
    return Deliveries(deliveries=[DeliveryOut.of(d) for d in rows])
