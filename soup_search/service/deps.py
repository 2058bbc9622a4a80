"""Request dependencies: the services, the database session, and who is calling with which scope.

A token comes as ``Authorization: Bearer <token>`` (the API) or in the dashboard's cookie.
Missing or unknown → 401; too weak a scope → 403. Who called is kept on ``request.state``
for the audit log.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from soup_search.service.errors import APIError
from soup_search.service.models import Search, Watch
from soup_search.service.tokens import allows, find_token

COOKIE = "soup_search_token"


@dataclass(frozen=True)
class Caller:
    id: int
    name: str
    scope: str

    def may_change(self, owned: Search | Watch) -> bool:
        return self.scope == "admin" or (self.scope == "write" and owned.owner_id == self.id)


def services(request: Request):
    return request.app.state.services


def db_session(request: Request) -> Iterator[Session]:
    with request.app.state.services.db.session() as s:
        yield s


def _secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def caller(request: Request) -> Caller:
    secret = _secret(request)
    if not secret:
        raise APIError(401, "no token: send Authorization: Bearer <token> (create one with soup-search tokens create)")
    with request.app.state.services.db.session() as s:
        token = find_token(s, secret)
        if token is None:
            raise APIError(401, "unknown or revoked token; create one with soup-search tokens create")
        who = Caller(id=token.id, name=token.name, scope=token.scope)
    request.state.caller = who
    return who


def require(scope: str):
    """A dependency: the caller, if its token's scope allows ``scope``."""
    def _check(who: Caller = Depends(caller)) -> Caller:
        if not allows(who.scope, scope):
            raise APIError(403, f"token {who.name!r} has scope {who.scope!r}; this needs {scope!r}")
        return who
    return _check


def own(owned: Search | Watch, who: Caller) -> None:
    if not who.may_change(owned):
        what = f"search {owned.id}" if isinstance(owned, Search) else f"watch {owned.name}"
        raise APIError(403, f"{what} belongs to another token; only its owner or an admin may change it")
