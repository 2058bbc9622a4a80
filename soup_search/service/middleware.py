"""Two ASGI layers: a body-size limit (413 before the app reads more) and the audit log."""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soup_search.service.models import AuditEvent, utcnow

log = logging.getLogger("soup_search.service")


class _TooLarge(Exception):
    pass


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"error": f"request body over {limit} bytes; send a smaller config"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes: by Content-Length at once, else while reading."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _send_413(send, self.limit)
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except _TooLarge:
            if not started:
                await _send_413(send, self.limit)


class Audit:
    """Write an audit row for every mutating call and every refused (401/403) call."""

    def __init__(self, app: ASGIApp, db):
        self.app, self.db = app, db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            method = scope["method"]
            if method not in ("GET", "HEAD", "OPTIONS") or status in (401, 403):
                self._write(Request(scope), method, status)

    def _write(self, request: Request, method: str, status: int) -> None:
        who = getattr(request.state, "caller", None)
        detail = getattr(request.state, "audit", None)
        try:
            with self.db.session() as s:
                s.add(AuditEvent(at=utcnow(), token_id=who.id if who else None, method=method,
                                 path=request.url.path, status=status,
                                 client=request.client.host if request.client else None, detail=detail))
        except Exception:  # the audit must never turn an answer into a crash
            log.exception("audit row not written")
