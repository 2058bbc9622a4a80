"""``/v1/searches``: create, list, read, cancel, resume, and a finished search's artifacts."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from soup_search.pipeline.state import STATE, default_storage_url
from soup_search.service import intake
from soup_search.service.deps import Caller, db_session, own, require, services
from soup_search.service.errors import APIError
from soup_search.service.models import (
    ACTIVE,
    CANCELLED,
    FAILED,
    STATES,
    Search,
    Token,
)
from soup_search.service.reconcile import log_dir
from soup_search.service.schemas import SearchList, SearchOut
from soup_search.service.submit import add_search

router = APIRouter(prefix="/v1/searches", tags=["searches"])

ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,47}$")
#: a finished search's files the API serves (name in the URL → file in the run folder)
ARTIFACTS = {"results": "results.json", "report": "report.md", "soup.yaml": "soup.yaml"}


def artifacts_of(search: Search) -> list[str]:
    out = Path(search.out_dir)
    return [name for name, file in ARTIFACTS.items() if (out / file).is_file()]


def show(s: Session, search: Search) -> SearchOut:
    owner = s.get(Token, search.owner_id)
    return SearchOut.of(search, owner.name if owner else "?", default_storage_url(Path(search.out_dir) / STATE),
                        artifacts_of(search))


def get_search(s: Session, search_id: str) -> Search:
    search = s.get(Search, search_id)
    if search is None:
        raise APIError(404, f"no search {search_id!r}; list them with GET /v1/searches")
    return search


@router.post("", status_code=201, response_model=SearchOut)
async def create(request: Request, id: str | None = Query(None, description="your own id: the same request twice creates one search"),
                 who: Caller = Depends(require("write")), svc=Depends(services)):
    if id is not None and not ID.match(id):
        raise APIError(422, f"id {id!r} is not valid; use 1 to 48 lowercase letters, digits, '.', '_' or '-'")
    body = await request.body()
    taken = await run_in_threadpool(intake.take, body, request.headers.get("content-type"), svc.settings.roots)
    request.state.audit = f"create {id or ''}".strip()
    with svc.reconciler.lock, svc.db.session() as s:
        if id is not None and (existing := s.get(Search, id)) is not None:
            if existing.owner_id == who.id and existing.request_hash == taken.request_hash:
                return JSONResponse(show(s, existing).model_dump(mode="json"), status_code=200)
            raise APIError(409, f"search {id!r} exists with another config or owner; choose another id")
        search_id = id or f"s-{secrets.token_hex(6)}"
        search = add_search(s, svc.settings, who.id, search_id, taken)
        out = show(s, search)
    request.state.audit = f"create {search_id}"
    svc.wake()
    return out


@router.get("", response_model=SearchList)
def list_searches(state: str | None = Query(None, description=f"one of {', '.join(STATES)}"),
                  limit: int = Query(100, ge=1, le=1000), who: Caller = Depends(require("read")),
                  s: Session = Depends(db_session)):
    if state is not None and state not in STATES:
        raise APIError(422, f"unknown state {state!r}; use one of {', '.join(STATES)}")
    query = select(Search).order_by(Search.created_at.desc(), Search.id).limit(limit)
    if state is not None:
        query = query.where(Search.state == state)
    return SearchList(searches=[show(s, x) for x in s.scalars(query)])


@router.get("/{search_id}", response_model=SearchOut)
def read(search_id: str, who: Caller = Depends(require("read")), s: Session = Depends(db_session)):
    return show(s, get_search(s, search_id))


def _change(search_id: str, request: Request, who: Caller, svc, verb: str, done: str,
            allowed: tuple[str, ...], act) -> SearchOut:
    """An owner's (or an admin's) state change of a search in one of the ``allowed`` states."""
    request.state.audit = f"{verb} {search_id}"
    with svc.reconciler.lock, svc.db.session() as s:
        search = get_search(s, search_id)
        own(search, who)
        if search.state not in allowed:
            raise APIError(409, f"search {search_id} is {search.state}; "
                                f"only {' or '.join(allowed)} searches can be {done}")
        act(s, search)
        out = show(s, search)
    svc.wake()
    return out


@router.post("/{search_id}/cancel", response_model=SearchOut)
def cancel(search_id: str, request: Request, who: Caller = Depends(require("write")), svc=Depends(services)):
    return _change(search_id, request, who, svc, "cancel", "cancelled", ACTIVE, svc.reconciler.cancel)


@router.post("/{search_id}/resume", response_model=SearchOut)
def resume(search_id: str, request: Request, who: Caller = Depends(require("write")), svc=Depends(services)):
    return _change(search_id, request, who, svc, "resume", "resumed", (CANCELLED, FAILED), svc.reconciler.resume)


def _file(search: Search, relative: str, media_type: str) -> FileResponse:
    path = Path(search.out_dir) / relative
    if not path.is_file():
        raise APIError(404, f"search {search.id} has no {relative} yet (it is {search.state}); "
                            "artifacts appear when it succeeds")
    return FileResponse(path, media_type=media_type)


@router.get("/{search_id}/results")
def results(search_id: str, who: Caller = Depends(require("read")), s: Session = Depends(db_session)):
    return _file(get_search(s, search_id), ARTIFACTS["results"], "application/json")


@router.get("/{search_id}/report")
def report(search_id: str, who: Caller = Depends(require("read")), s: Session = Depends(db_session)):
    return _file(get_search(s, search_id), ARTIFACTS["report"], "text/markdown")


@router.get("/{search_id}/soup.yaml")
def soup_yaml(search_id: str, who: Caller = Depends(require("read")), s: Session = Depends(db_session)):
    return _file(get_search(s, search_id), ARTIFACTS["soup.yaml"], "application/yaml")


@router.get("/{search_id}/plots")
def plots(search_id: str, who: Caller = Depends(require("read")), s: Session = Depends(db_session)):
    folder = Path(get_search(s, search_id).out_dir) / "plots"
    names = sorted(p.stem for p in folder.glob("*.png")) if folder.is_dir() else []
    return {"plots": [{"name": n, "url": f"/v1/searches/{search_id}/plots/{n}.png"} for n in names]}


@router.get("/{search_id}/plots/{name}.png")
def plot(search_id: str, name: str, who: Caller = Depends(require("read")), s: Session = Depends(db_session)):
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise APIError(404, f"no plot {name!r}")
    return _file(get_search(s, search_id), f"plots/{name}.png", "image/png")


@router.get("/{search_id}/logs", response_class=PlainTextResponse)
def logs(search_id: str, who: Caller = Depends(require("read")), s: Session = Depends(db_session)):
    search = get_search(s, search_id)
    folder = log_dir(search)
    files = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    return PlainTextResponse("".join(f"===== {p.stem} =====\n{p.read_text()}\n" for p in files))
