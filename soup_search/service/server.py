"""``soup-search serve``: the database, the Ray job server, a first reconcile, then uvicorn.

SIGTERM (or Ctrl-C) stops the HTTP server and the reconcile loop; the Ray head and the
searches running on it carry on, and the next ``serve`` on the same data dir takes them up.
"""

from __future__ import annotations

import logging
import signal
import time

import uvicorn

from soup_search.errors import ConfigError
from soup_search.service.app import Services, create_app
from soup_search.service.db import Database
from soup_search.service.jobs import Jobs
from soup_search.service.ray_head import start_head, use_ray_env
from soup_search.service.reconcile import Reconciler
from soup_search.service.settings import Settings, is_loopback
from soup_search.service.tokens import live_token_count

log = logging.getLogger("soup_search.service")


def build(settings: Settings, echo=print) -> Services:
    """Open the database, reach (or start) the Ray job server, and reconcile once."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.searches_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    with db.session() as s:
        tokens = live_token_count(s)
    if not is_loopback(settings.host) and tokens == 0:
        raise ConfigError("--host", [f"{settings.host} is not a loopback address and no token exists; "
                                     "create one first with soup-search tokens create --name NAME --scope admin"])
    if settings.ray_address:
        use_ray_env()
        address = settings.ray_address
    else:
        echo("starting the embedded Ray head (job server) ...")
        address = start_head(settings.data_dir).dashboard
    reconciler = Reconciler(db, Jobs(address), settings.max_running, settings.max_attempts)
    start = time.perf_counter()
    reconciler.run_once()
    echo(f"reconciled with Ray at {address} in {time.perf_counter() - start:.2f} s")
    return Services(settings=settings, db=db, reconciler=reconciler)


def _exit_cleanly(signum, frame) -> None:
    raise SystemExit(0)


def serve(settings: Settings, echo=print) -> None:
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the handler it
    # found: this one, so a clean stop exits 0 instead of dying of the signal
    signal.signal(signal.SIGTERM, _exit_cleanly)
    svc = build(settings, echo)
    echo(f"soup-search service on http://{settings.host}:{settings.port} "
         f"(data {settings.data_dir}, database {svc.db.engine.url.render_as_string()})")
    logging.getLogger("soup_search.service").setLevel(logging.INFO)
    uvicorn.run(create_app(svc), host=settings.host, port=settings.port, log_level="warning",
                timeout_graceful_shutdown=10)
