"""The FastAPI app: routers, errors, the body limit, the audit log, and the reconcile loop."""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field

from fastapi import FastAPI

from soup_search import __version__
from soup_search.service import errors
from soup_search.service.db import Database
from soup_search.service.middleware import Audit, BodyLimit
from soup_search.service.reconcile import Reconciler
from soup_search.service.routers import dashboard, health, searches, watches
from soup_search.service.scheduler import Scheduler
from soup_search.service.settings import MAX_BODY_BYTES, Settings
from soup_search.service.ticks import Ticker
from soup_search.service.webhooks import Deliverer

log = logging.getLogger("soup_search.service")


@dataclass
class Services:
    """What every request needs: settings, database, reconciler, watch ticker; and the loops
    that drive them (the reconcile loop here, the watch scheduler in its own threads)."""

    settings: Settings
    db: Database
    reconciler: Reconciler
    ticker: Ticker = field(init=False)
    scheduler: Scheduler = field(init=False)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        st = self.settings
        self.ticker = Ticker(st, self.db, self.reconciler.lock, self.wake)
        self.scheduler = Scheduler(self.db, self.ticker, st.scheduler_s, st.lease_s,
                                   Deliverer(self.db, st.webhook_attempts, st.webhook_backoff_s, st.webhook_timeout_s))

    def wake(self) -> None:
        """Run a reconcile pass now (a new, cancelled or resumed search)."""
        self._wake.set()

    def start_loop(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="reconcile", daemon=True)
        self._thread.start()
        self.scheduler.start()

    def stop_loop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.scheduler.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconciler.run_once()
                self.scheduler.wake()  # a search may have finished: its tick goes on
            except Exception:  # keep reconciling: one bad pass must not stop the service
                log.exception("reconcile pass failed")
            self._wake.wait(self.settings.reconcile_s)
            self._wake.clear()


def create_app(svc: Services, loop: bool = True) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if loop:
            svc.start_loop()
        yield
        svc.stop_loop()

    app = FastAPI(title="soup-search", version=__version__, lifespan=lifespan,
                  description="Runs model-soup searches (SoCE) as Ray Jobs. Every /v1 call needs a bearer token.")
    app.state.services = svc
    errors.install(app)
    app.include_router(health.router)
    app.include_router(searches.router)
    app.include_router(watches.router)
    app.include_router(dashboard.router)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(Audit, db=svc.db)  # outermost: a refused body is audited too
    return app
