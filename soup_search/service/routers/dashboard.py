"""The dashboard: server-rendered, read-only pages over the searches, behind a token cookie.

A token is entered once at ``/login``; it is kept in the HttpOnly, SameSite=Strict cookie
:data:`~soup_search.service.deps.COOKIE`, which :func:`~soup_search.service.deps.caller`
accepts like a bearer token. A page asked for without a valid token redirects to the login.
Artifacts and plots are served through the API's own routes (the same files, the same rules).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from soup_search.service.deps import COOKIE, Caller, caller, db_session, services
from soup_search.service.errors import APIError
from soup_search.service.models import ACTIVE, STATES, Search
from soup_search.service.reconcile import log_dir
from soup_search.service.routers import searches
from soup_search.service.schemas import SearchOut
from soup_search.service.tokens import allows, find_token

router = APIRouter(tags=["dashboard"], include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "templates")

#: a dashboard file name → the API route that serves it (``results``, ``report``, ``soup.yaml``, ``logs``)
FILES = {"results": searches.results, "report": searches.report, "soup.yaml": searches.soup_yaml,
         "logs": searches.logs}
#: seconds between reloads of a page that shows a queued or running search
REFRESH_S = 5
#: where a login may send the browser back to: a path on this server (never ``//host``)
LOCAL_PATH = re.compile(r"^/(?![/\\])[^\s]*$")


def viewer(request: Request) -> Caller | None:
    """The caller if its token (cookie or bearer) may read, else None (the page redirects to the login)."""
    try:
        who = caller(request)
    except APIError:
        return None
    return who if allows(who.scope, "read") else None


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}" if target != "/" else "/login", status_code=303)


def page(request: Request, template: str, status: int = 200, **context) -> Response:
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


templates.env.filters["when"] = when


# ---------------------------------------------------------------------- login
@router.get("/login")
def login_form(request: Request, back: str = Query("/", alias="next")):
    return page(request, "login.html", back=back, error=None)


@router.post("/login")
def login(request: Request, token: str = Form(""), back: str = Form("/", alias="next"), svc=Depends(services)):
    request.state.audit = "dashboard login"
    token = token.strip()
    with svc.db.session() as s:
        found = find_token(s, token)
        who = Caller(id=found.id, name=found.name, scope=found.scope) if found is not None else None
    if who is None:
        return page(request, "login.html", status=401, back=back,
                    error="unknown or revoked token; create one with soup-search tokens create")
    request.state.caller = who
    response = RedirectResponse(back if LOCAL_PATH.match(back) else "/", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.get("/logout")
def logout():
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# ---------------------------------------------------------------------- pages
@router.get("/")
def index(request: Request, state: str | None = None, who: Caller | None = Depends(viewer),
          s: Session = Depends(db_session)):
    if who is None:
        return to_login(request)
    state = state or None
    try:
        listed = searches.list_searches(state=state, limit=1000, who=who, s=s).searches
    except APIError as exc:
        return page(request, "error.html", status=exc.status, who=who, message=exc.message)
    refresh = REFRESH_S if any(x.state in ACTIVE for x in listed) else None
    return page(request, "searches.html", who=who, searches=listed, states=STATES, state=state, refresh=refresh)


@router.get("/searches/{search_id}")
def search_page(request: Request, search_id: str, who: Caller | None = Depends(viewer),
                s: Session = Depends(db_session)):
    if who is None:
        return to_login(request)
    try:
        search = searches.get_search(s, search_id)
    except APIError as exc:
        return page(request, "error.html", status=exc.status, who=who, message=exc.message)
    out = searches.show(s, search)
    plots = [plot["name"] for plot in searches.plots(search_id=search_id, who=who, s=s)["plots"]]
    refresh = REFRESH_S if search.state in ACTIVE else None
    return page(request, "search.html", who=who, search=out, comparison=comparison(search.out_dir),
                plots=plots, files=files_of(out, search), refresh=refresh)


def files_of(out: SearchOut, search: Search) -> list[tuple[str, str]]:
    """(label, dashboard URL) of each artifact the search has now, and its logs once there are any."""
    names = [name for name in out.links if name in FILES and name != "logs"]
    if log_dir(search).is_dir():
        names.append("logs")
    return [(searches.ARTIFACTS.get(name, name), f"/searches/{out.id}/files/{name}") for name in names]


def comparison(out_dir: str) -> list[dict]:
    """The held-out comparison rows of a finished search's results.json (empty before it exists)."""
    path = Path(out_dir) / searches.ARTIFACTS["results"]
    if not path.is_file():
        return []
    return [{"name": row["name"], "kind": row["kind"], "dev_mean": row.get("dev_mean"),
             "test_mean": row.get("test_mean"), **delta_cells(row)}
            for row in json.loads(path.read_text()).get("comparison", [])]


def delta_cells(row: dict) -> dict:
    """Δ with its 95% CI, p and whether the CI excludes 0, written as the report writes them
    (``PairedDelta.interval`` and ``.significant``; not imported: soup_search.analysis loads
    scipy and matplotlib into the service, and a test holds the two to the same text)."""
    if row.get("delta") is None:
        return {"delta": "", "p_value": "", "significant": False}
    return {"delta": f"{row['delta']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]",
            "p_value": f"{row['p_value']:.3g}", "significant": row["ci_low"] > 0 or row["ci_high"] < 0}


# ---------------------------------------------------------------------- files (cookie-authenticated)
@router.get("/searches/{search_id}/files/{name}")
def search_file(request: Request, search_id: str, name: str, who: Caller | None = Depends(viewer),
                s: Session = Depends(db_session)):
    if who is None:
        return to_login(request)
    if name not in FILES:
        raise APIError(404, f"no file {name!r}; the dashboard serves {', '.join(FILES)}")
    return FILES[name](search_id=search_id, who=who, s=s)


@router.get("/searches/{search_id}/plots/{name}.png")
def search_plot(request: Request, search_id: str, name: str, who: Caller | None = Depends(viewer),
                s: Session = Depends(db_session)):
    if who is None:
        return to_login(request)
    return searches.plot(search_id=search_id, name=name, who=who, s=s)
