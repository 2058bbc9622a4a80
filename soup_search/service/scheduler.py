"""The watch scheduler: a loop over database rows in the service process, under a lease.

Every ``scheduler_s`` seconds (or at once when woken: a trigger, a finished search) the loop
takes or renews the ``scheduler`` lease row; only its holder fires due ticks and moves open
ones on (:mod:`~soup_search.service.ticks`). A service killed mid-tick leaves the lease to
lapse after ``lease_s``; the next one takes it and continues the open ticks where they stood.
Webhook deliveries run in their own thread, so a slow receiver never holds up a tick.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from soup_search.service.db import Database
from soup_search.service.models import Lease, as_utc, utcnow
from soup_search.service.ticks import Ticker
from soup_search.service.webhooks import Deliverer

log = logging.getLogger("soup_search.service.scheduler")

LEASE = "scheduler"


def take_lease(db: Database, holder: str, seconds: float, name: str = LEASE) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False while another holder's lease runs."""
    now = utcnow()
    try:
        with db.session() as s:
            lease = s.get(Lease, name, with_for_update=True)
            if lease is None:
                s.add(Lease(name=name, holder=holder, expires_at=now + timedelta(seconds=seconds)))
                return True
            if lease.holder != holder and as_utc(lease.expires_at) > now:
                return False
            lease.holder, lease.expires_at = holder, now + timedelta(seconds=seconds)
            return True
    except IntegrityError:  # another process inserted it first
        return False


def drop_lease(db: Database, holder: str, name: str = LEASE) -> None:
    """Give the lease up (a clean shutdown), so the next service need not wait for it to lapse."""
    with db.session() as s:
        lease = s.get(Lease, name)
        if lease is not None and lease.holder == holder:
            s.delete(lease)


class Scheduler:
    def __init__(self, db: Database, ticker: Ticker, every_s: float, lease_s: float, deliverer: Deliverer):
        self.db, self.ticker, self.every_s, self.lease_s, self.deliverer = db, ticker, every_s, lease_s, deliverer
        self.holder = uuid.uuid4().hex
        self.leader = False
        self._wake, self._deliver, self._stop = threading.Event(), threading.Event(), threading.Event()
        self._threads: list[threading.Thread] = []

    def wake(self) -> None:
        self._wake.set()

    def run_once(self) -> None:
        """One pass: the lease, then due ticks fired, open ticks moved on."""
        self.leader = take_lease(self.db, self.holder, self.lease_s)
        if not self.leader:
            return
        self.ticker.fire_due()
        self.ticker.advance_all()
        self._deliver.set()

    def start(self) -> None:
        for name, target in (("scheduler", self._loop), ("webhooks", self._deliver_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._deliver.set()
        for thread in self._threads:
            thread.join(timeout=30)
        if self.leader:
            drop_lease(self.db, self.holder)
        self.deliverer.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # one bad pass must not stop the scheduler
                log.exception("scheduler pass failed")
            self._wake.wait(min(self.every_s, self.lease_s / 3))
            self._wake.clear()

    def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            wait = self.every_s
            try:
                if self.leader:
                    self.deliverer.run_once()
                    due = self.deliverer.next_due_in()
                    wait = min(wait, due) if due is not None else wait
            except Exception:
                log.exception("webhook pass failed")
            self._deliver.wait(max(wait, 0.05))
            self._deliver.clear()
