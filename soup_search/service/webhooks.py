"""Signed webhooks: a watch's events POSTed as JSON to its URLs, retried with backoff, logged.

Each event becomes one :class:`~soup_search.service.models.Delivery` row per URL, written in
the same transaction as what caused it. :class:`Deliverer` sends the due ones from its own
thread, so a dead or slow receiver never holds up the scheduler.

The body is signed as ``X-Soup-Search-Signature: t=<unix seconds>,v1=<hex>``, where ``hex`` is
HMAC-SHA256 of ``"<t>." + body`` under the watch's secret. A receiver checks it with
:func:`verify`, which also refuses a timestamp older than its tolerance (a replay).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from soup_search.service.models import DELIVERED, DELIVERING, GAVE_UP, Delivery, Watch, as_utc, utcnow

log = logging.getLogger("soup_search.service.webhooks")

EVENTS = ("search.finished", "search.failed", "champion.promoted", "watch.source_changed")
SIGNATURE = "X-Soup-Search-Signature"
EVENT = "X-Soup-Search-Event"
DELIVERY = "X-Soup-Search-Delivery"
#: a signature older than this is refused by :func:`verify` (seconds)
TOLERANCE_S = 300


def body_of(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: str, header: str, body: bytes, now: float | None = None, tolerance_s: float = TOLERANCE_S) -> bool:
    """Whether ``header`` signs ``body`` under ``secret`` and is recent (not a replay)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def emit(s: Session, watch: Watch, event: str, data: dict) -> None:
    """Queue ``event`` for each of the watch's webhook URLs (in the caller's transaction)."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    now = utcnow()
    payload = {"event": event, "watch": {"id": watch.id, "name": watch.name}, "at": now.isoformat(), "data": data}
    for url in watch.webhooks or []:
        s.add(Delivery(watch_id=watch.id, event=event, url=url, payload=payload, state=DELIVERING, attempts=0,
                       next_attempt_at=now, created_at=now))


class Deliverer:
    """Sends due deliveries; each failure is retried after ``backoff_s * 2**(attempt-1)`` seconds,
    up to ``attempts`` tries, then given up."""

    def __init__(self, db, attempts: int, backoff_s: float, timeout_s: float):
        self.db, self.attempts, self.backoff_s, self.timeout_s = db, attempts, backoff_s, timeout_s
        self.client = httpx.Client(timeout=timeout_s, follow_redirects=False)

    def due(self) -> list[int]:
        with self.db.session() as s:
            query = (select(Delivery.id).where(Delivery.state == DELIVERING, Delivery.next_attempt_at <= utcnow())
                     .order_by(Delivery.next_attempt_at, Delivery.id).limit(50))
            return list(s.scalars(query))

    def run_once(self) -> int:
        """Try every due delivery once; returns how many were tried."""
        ids = self.due()
        for delivery_id in ids:
            self._try(delivery_id)
        return len(ids)

    def _try(self, delivery_id: int) -> None:
        with self.db.session() as s:
            d = s.get(Delivery, delivery_id)
            watch = s.get(Watch, d.watch_id)
            body, secret, url = body_of(d.payload), watch.secret, d.url
            headers = {"Content-Type": "application/json", EVENT: d.event, DELIVERY: str(d.id),
                       SIGNATURE: sign(secret, body)}
        status, error = None, None
        try:
            response = self.client.post(url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"answered {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        with self.db.session() as s:
            d = s.get(Delivery, delivery_id)
            d.attempts += 1
            d.last_status, d.last_error = status, error
            if error is None:
                d.state, d.delivered_at = DELIVERED, utcnow()
            elif d.attempts >= self.attempts:
                d.state = GAVE_UP
                log.warning("webhook %s to %s given up after %d attempts: %s", d.event, d.url, d.attempts, error)
            else:
                d.next_attempt_at = utcnow() + timedelta(seconds=self.backoff_s * 2 ** (d.attempts - 1))

    def next_due_in(self) -> float | None:
        """Seconds until the next pending delivery is due (None when none is pending)."""
        with self.db.session() as s:
            when = s.scalar(select(Delivery.next_attempt_at).where(Delivery.state == DELIVERING)
                            .order_by(Delivery.next_attempt_at).limit(1))
        if when is None:
            return None
        return max(0.0, (as_utc(when) - utcnow()).total_seconds())

    def close(self) -> None:
        self.client.close()
