"""The reconciler: the database is the truth, Ray's job records are not durable.

One :meth:`Reconciler.run_once` pass (at start-up, then every few seconds):
1. each running search's job is read from Ray: its log is copied into the data dir and its
   progress read from the Optuna storage; a finished job finishes the search; a job that
   failed, was stopped behind the service's back, or disappeared with a restarted head is
   queued again (it continues the same study) until ``max_attempts`` submissions failed;
   a run that exited with code 2 (bad input) fails at once, since running it again cannot help;
2. queued searches start in FIFO order while fewer than ``max_running`` run.

Every state change goes through :func:`move`, which writes the transition row. The API's
mutating calls take the same lock, so a cancel never races a resubmission.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from soup_search.config import RunConfig
from soup_search.pipeline.state import MARKER, STATE
from soup_search.service.db import Database
from soup_search.service.jobs import ClusterUnavailable, JobState, Jobs
from soup_search.service.models import (
    CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Search, Transition, utcnow,
)
from soup_search.service.progress import read_progress

log = logging.getLogger("soup_search.service")

#: a run's exit code for bad input (the CLI's): not worth another attempt
USER_ERROR_EXIT = 2
#: variables passed on to every job
JOB_ENV = ("SOUP_SEARCH_CACHE_DIR",)


def move(s: Session, search: Search, state: str, reason: str | None = None) -> None:
    """Change a search's state and record the transition."""
    s.add(Transition(search_id=search.id, from_state=search.state, to_state=state, reason=reason, at=utcnow()))
    search.state = state
    search.reason = reason
    if state in (SUCCEEDED, FAILED, CANCELLED):
        search.finished_at = utcnow()


def search_dir(search: Search) -> Path:
    return Path(search.out_dir).parent


def config_path(search: Search) -> Path:
    return search_dir(search) / "config.yaml"


def log_dir(search: Search) -> Path:
    return search_dir(search) / "logs"


def run_argv(search: Search) -> list[str]:
    """The job's entrypoint: this interpreter running ``soup-search run`` (``--resume`` once a study exists)."""
    argv = [sys.executable, "-m", "soup_search", "run", str(config_path(search)), "--out", search.out_dir]
    if (Path(search.out_dir) / STATE / MARKER).is_file():
        argv.append("--resume")
    return argv


def last_error(text: str | None) -> str | None:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    return (errors or lines or [None])[-1]


class Reconciler:
    def __init__(self, db: Database, jobs: Jobs, max_running: int = 1, max_attempts: int = 3):
        self.db, self.jobs = db, jobs
        self.max_running, self.max_attempts = max_running, max_attempts
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ one pass
    def run_once(self) -> None:
        try:
            with self.lock:
                for search_id in self._ids(RUNNING):
                    self._check(search_id)
                self._start_queued()
        except ClusterUnavailable as exc:
            log.warning("reconcile skipped: %s", exc)

    def _ids(self, state: str) -> list[str]:
        with self.db.session() as s:
            return list(s.scalars(select(Search.id).where(Search.state == state)
                                  .order_by(Search.created_at, Search.id)))

    def _check(self, search_id: str) -> None:
        with self.db.session() as s:
            search = s.get(Search, search_id)
            if search is None or search.state != RUNNING:
                return
            job = self.jobs.state(search.ray_job_id)
            if job is not None:
                self._keep_log(search)
            self._update_progress(search)
            if job is not None and not job.done:
                return
            self._finish(s, search, job)

    def _finish(self, s: Session, search: Search, job: JobState | None) -> None:
        if job is not None and job.status == "SUCCEEDED":
            move(s, search, SUCCEEDED)
            return
        if job is not None and job.status == "FAILED" and job.exit_code == USER_ERROR_EXIT:
            move(s, search, FAILED, last_error(self._log_text(search)) or job.message)
            return
        if job is None:
            why = f"Ray job {search.ray_job_id} disappeared (the Ray head restarted)"
        elif job.status == "STOPPED":
            why = f"Ray job {search.ray_job_id} was stopped outside the service"
        else:
            why = f"Ray job {search.ray_job_id} failed: {last_error(self._log_text(search)) or job.message}"
        if search.attempts >= self.max_attempts:
            move(s, search, FAILED, f"gave up after {search.attempts} attempts; last: {why}")
        else:
            move(s, search, QUEUED, f"resubmitting ({why})")

    def _start_queued(self) -> None:
        with self.db.session() as s:
            running = s.scalar(select(func.count()).select_from(Search).where(Search.state == RUNNING))
        free = self.max_running - running
        for search_id in self._ids(QUEUED)[:max(free, 0)]:
            with self.db.session() as s:
                search = s.get(Search, search_id)
                if search is not None and search.state == QUEUED:
                    self._submit(s, search)

    def _submit(self, s: Session, search: Search) -> None:
        n = search.submissions + 1
        job_id = search.id if n == 1 else f"{search.id}-{n}"
        env = {k: os.environ[k] for k in JOB_ENV if k in os.environ}
        self.jobs.submit(job_id, run_argv(search), env)  # ClusterUnavailable leaves the search queued
        search.submissions, search.attempts, search.ray_job_id = n, search.attempts + 1, job_id
        if search.started_at is None:
            search.started_at = utcnow()
        move(s, search, RUNNING, f"Ray job {job_id} (attempt {search.attempts})")

    # ------------------------------------------------------------------ logs and progress
    def _log_file(self, search: Search) -> Path:
        return log_dir(search) / f"{search.ray_job_id}.log"

    def _keep_log(self, search: Search) -> None:
        text = self.jobs.logs(search.ray_job_id)
        if text is not None:
            path = self._log_file(search)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)

    def _log_text(self, search: Search) -> str | None:
        path = self._log_file(search)
        return path.read_text() if path.is_file() else None

    def _update_progress(self, search: Search) -> None:
        try:
            cfg = stored_config(config_path(search))
            search.progress = read_progress(cfg, search.out_dir)
        except Exception as exc:  # progress is best effort; the state machine must go on
            log.warning("progress of %s unreadable: %s", search.id, exc)

    # ------------------------------------------------------------------ API verbs
    def cancel(self, s: Session, search: Search) -> None:
        with self.lock:
            if search.state == RUNNING and search.ray_job_id:
                self.jobs.stop(search.ray_job_id)
                self._keep_log(search)
            move(s, search, CANCELLED, "cancelled by request")

    def resume(self, s: Session, search: Search) -> None:
        with self.lock:
            search.attempts = 0
            search.finished_at = None
            move(s, search, QUEUED, "resumed by request")


def stored_config(path: Path) -> RunConfig:
    """A search's stored config (validated at intake; read here without touching its files again)."""
    return RunConfig.model_validate({**yaml.safe_load(path.read_text()), "root": str(path.parent)})
