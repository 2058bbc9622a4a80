"""Service fixtures: ``soup-search serve`` as a real subprocess on a free loopback port, with its
own data dir, database, embedded Ray head (job server) and tokens; stopped, head too, at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from soup_search.service.process import ServiceProcess, free_port, make_token, wait_for  # noqa: F401

#: the tiny zoo's candidate that lands later
NEWCOMER = "expert_add_sort_count"
#: fast scheduler passes, a lease that lapses soon after a SIGKILL, quick webhook retries
WATCH_ENV = {"SOUP_SEARCH_SCHEDULER_S": "0.5", "SOUP_SEARCH_LEASE_S": "4", "SOUP_SEARCH_WEBHOOK_ATTEMPTS": "3",
             "SOUP_SEARCH_WEBHOOK_BACKOFF_S": "0.2"}
ROOT = Path(__file__).resolve().parents[2]
#: seconds a tiny search has to finish
SEARCH_S = 600.0

Service = ServiceProcess


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
    data = yaml.safe_load((Path(__file__).parents[2] / "configs" / "tiny.yaml").read_text())
    data["name"] = name
    data["search"]["n_trials"] = n_trials
    return yaml.safe_dump(data)


def wait_state(client: httpx.Client, search_id: str, states: tuple[str, ...], timeout: float = SEARCH_S) -> dict:
    def look():
        body = client.get(f"/v1/searches/{search_id}").json()
        return body if body["state"] in states else None
    return wait_for(look, timeout, f"search {search_id} to reach {states}", every=0.5)


# ---- watches -----------------------------------------------------------------------------------

def watch_template(n_trials: int = 4) -> dict:
    """tiny.yaml without candidates: a watch's run-config template."""
    data = yaml.safe_load(tiny_config_text(n_trials))
    data.pop("candidates")
    return data


def history(api, watch_id: int) -> list[dict]:
    return api.get(f"/v1/watches/{watch_id}/history").json()["ticks"]


def finished_tick(api, watch_id: int, tick_id: int, timeout: float = SEARCH_S) -> dict:
    def look():
        tick = next(t for t in history(api, watch_id) if t["id"] == tick_id)
        return tick if tick["state"] == "done" else None
    return wait_for(look, timeout, f"tick {tick_id} of watch {watch_id} to finish", every=0.5)


def trigger(api, watch_id: int) -> int:
    r = api.post(f"/v1/watches/{watch_id}/trigger")
    assert r.status_code == 202, r.text
    return r.json()["id"]


def run_dir(service: ServiceProcess, search_id: str) -> Path:
    return service.data_dir / "searches" / search_id / "run"


def searches(api) -> list[str]:
    return [s["id"] for s in api.get("/v1/searches").json()["searches"]]


@pytest.fixture
def watched_models(service, tiny_zoo):
    """The tiny zoo's checkpoints, copied under the service's allowed root."""
    root = service.data_dir / "inputs" / "models"
    for name, path in tiny_zoo.candidates().items():
        shutil.copytree(path, root / name)
    return root


# ---- the client as a user runs it ---------------------------------------------------------------

def remote(*args: str, server: str, token: str | None = "unused", timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m soup_search remote ARGS`` with the server and token in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("SOUP_SEARCH_SERVER", "SOUP_SEARCH_TOKEN")}
    env |= {"SOUP_SEARCH_SERVER": server, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    if token is not None:
        env["SOUP_SEARCH_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "soup_search", "remote", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The stderr of a command that failed as a user error: exit 2, one line, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]
