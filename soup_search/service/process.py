"""``soup-search serve`` as a child process: started on a free loopback port, waited for until
``/healthz`` answers, stopped by a signal; its embedded Ray head stopped on request.
Used by the service benchmark and the tests."""

from __future__ import annotations

import json
import signal
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from soup_search.errors import SoupSearchError
from soup_search.service.ray_head import Head, free_port, head_file, stop_head

#: seconds a service has to answer /healthz (it may start a Ray head on a loaded machine)
START_S = 240.0


def wait_for(condition, timeout: float, what: str, every: float = 0.25):
    """Poll ``condition`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SoupSearchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class ServiceProcess:
    """One ``soup-search serve`` process and what it takes to call it."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    db: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None  # added to this process's environment
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir / f"serve-{self.port}.log"

    def start(self) -> "ServiceProcess":
        argv = [sys.executable, "-m", "soup_search", "serve", "--data-dir", str(self.data_dir),
                "--port", str(self.port), "--reconcile-s", "0.5", *self.args]
        if self.db:
            argv += ["--db", self.db]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **(self.env or {})})
        wait_for(self._healthy, START_S, f"the service on {self.url} (log {self.log})")
        return self

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise SoupSearchError(f"soup-search serve exited with {self.proc.returncode}: "
                                  f"{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def head(self) -> Head | None:
        path = head_file(self.data_dir)
        return Head(**json.loads(path.read_text())) if path.is_file() else None

    def stop_ray(self) -> None:
        head = self.head()
        if head is not None:
            stop_head(head)


def make_token(data_dir: Path, name: str, scope: str, db: str | None = None) -> str:
    """A new token in the service database of ``data_dir`` (or ``db``); returns its secret."""
    from soup_search.service.db import Database, default_url
    from soup_search.service.tokens import create_token

    data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(db or default_url(data_dir))
    try:
        with database.session() as s:
            return create_token(s, name, scope)[1]
    finally:
        database.close()
