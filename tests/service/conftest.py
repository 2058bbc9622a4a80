"""Service fixtures: ``soup-search serve`` as a real subprocess on a free loopback port, with its
own data dir, database, embedded Ray head (job server) and tokens; stopped, head too, at the end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

#: seconds a service has to answer /healthz (it may start a Ray head on a loaded machine)
START_S = 240.0
#: seconds a tiny search has to finish
SEARCH_S = 600.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_token(data_dir: Path, name: str, scope: str, db: str | None = None) -> str:
    from soup_search.service.db import Database, default_url
    from soup_search.service.tokens import create_token

    data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(db or default_url(data_dir))
    try:
        with database.session() as s:
            return create_token(s, name, scope)[1]
    finally:
        database.close()


def wait_for(condition, timeout: float, what: str, every: float = 0.25):
    """Poll ``condition`` until it returns something truthy (no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class Service:
    """One ``soup-search serve`` process and what it needs to be called."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    db: str | None = None
    args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir / f"serve-{self.port}.log"

    def start(self) -> "Service":
        argv = [sys.executable, "-m", "soup_search", "serve", "--data-dir", str(self.data_dir),
                "--port", str(self.port), "--reconcile-s", "0.5", *self.args]
        if self.db:
            argv += ["--db", self.db]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(self._healthy, START_S, f"the service on {self.url} (log {self.log})")
        return self

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"soup-search serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
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

    def stop_ray(self) -> None:
        from soup_search.service.ray_head import Head, head_file, stop_head

        path = head_file(self.data_dir)
        if path.is_file():
            stop_head(Head(**json.loads(path.read_text())))


@pytest.fixture
def service_dir(tmp_path):
    return tmp_path / "service"


@pytest.fixture
def service(service_dir, tiny_zoo):
    """A started service (tiny zoo built, so the job finds it cached); stopped with its head after the test."""
    svc = Service(service_dir)
    yield svc
    svc.stop()
    svc.stop_ray()


def tiny_config_text(n_trials: int = 4, name: str = "tiny") -> str:
    import yaml

    data = yaml.safe_load((Path(__file__).parents[2] / "configs" / "tiny.yaml").read_text())
    data["name"] = name
    data["search"]["n_trials"] = n_trials
    return yaml.safe_dump(data)


def wait_state(client: httpx.Client, search_id: str, states: tuple[str, ...], timeout: float = SEARCH_S) -> dict:
    def look():
        body = client.get(f"/v1/searches/{search_id}").json()
        return body if body["state"] in states else None
    return wait_for(look, timeout, f"search {search_id} to reach {states}", every=0.5)


