"""``soup-search bench service``: the service's figures on this machine.

- **POST → running**: from ``POST /v1/searches`` to the search's Ray job reported RUNNING by
  Ray's job server (and to the service's own ``running`` state), on an embedded head that is
  already up; each search is cancelled once it runs.
- **GET latency**: ``GET /v1/searches/{id}`` with ``searches`` searches in the database, from
  ``concurrency`` concurrent clients (httpx, asyncio), p50/p99 over ``requests`` requests. The
  service of this part points at a Ray address where nothing answers, so its searches stay
  queued and nothing else loads the machine.
- **reconcile after restart**: the service is stopped by SIGKILL with one search running and
  the rest queued, and started again; its first reconcile pass is timed (``serve`` prints it).
"""

from __future__ import annotations

import asyncio
import re
import signal
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
import yaml

from soup_search.service.jobs import Jobs
from soup_search.service.process import ServiceProcess, free_port, make_token, wait_for

TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"


@dataclass(frozen=True)
class ServiceBench:
    post_to_state_running_s: list[float]
    post_to_job_running_s: list[float]
    get_p50_ms: float
    get_p99_ms: float
    get_requests: int
    get_concurrency: int
    searches_in_db: int
    requests_per_s: float
    reconcile_after_restart_s: list[float]
    restart_to_healthy_s: list[float]


def _config(name: str, n_trials: int = 4) -> str:
    data = yaml.safe_load(TINY.read_text())
    data["name"], data["search"]["n_trials"] = name, n_trials
    return yaml.safe_dump(data)


def post_to_running(svc: ServiceProcess, token: str, rounds: int, progress=print) -> tuple[list[float], list[float]]:
    jobs = Jobs(svc.head().dashboard)
    to_state, to_job = [], []
    with svc.client(token) as api:
        for i in range(rounds):
            progress(f"POST → running, round {i + 1} of {rounds}")
            t0 = time.perf_counter()
            search_id = api.post("/v1/searches", content=_config(f"latency-{i}"),
                                 headers={"content-type": "text/yaml"}).json()["id"]
            body = wait_for(lambda: (b := api.get(f"/v1/searches/{search_id}").json())["state"] == "running" and b,
                            120, "the search to be submitted", every=0.02)
            to_state.append(time.perf_counter() - t0)
            wait_for(lambda: (s := jobs.state(body["ray_job_id"])) is not None and s.status == "RUNNING",
                     120, "the Ray job to run", every=0.02)
            to_job.append(time.perf_counter() - t0)
            api.post(f"/v1/searches/{search_id}/cancel")
    return to_state, to_job


async def _hammer(url: str, token: str, ids: list[str], requests: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue = [ids[i % len(ids)] for i in range(requests)]
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker():
            while queue:
                search_id = queue.pop()
                t0 = time.perf_counter()
                r = await client.get(f"/v1/searches/{search_id}")
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def get_latency(data_dir: Path, searches: int, requests: int, concurrency: int, progress=print):
    token = make_token(data_dir, "bench", "admin")
    svc = ServiceProcess(data_dir, args=("--ray-address", f"http://127.0.0.1:{free_port()}")).start()
    try:
        with svc.client(token) as api:
            ids = [api.post("/v1/searches", content=_config(f"queued-{i}"),
                            headers={"content-type": "text/yaml"}).json()["id"] for i in range(searches)]
        progress(f"GET /v1/searches/{{id}}: {requests} requests, {concurrency} at once, {searches} searches")
        t0 = time.perf_counter()
        latencies = asyncio.run(_hammer(svc.url, token, ids, requests, concurrency))
        wall = time.perf_counter() - t0
    finally:
        svc.stop()
    ms = np.array(latencies) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), requests / wall


def reconcile_after_restart(svc: ServiceProcess, token: str, rounds: int, progress=print) -> tuple[list[float], list[float]]:
    with svc.client(token) as api:
        first = api.post("/v1/searches", content=_config("restart", n_trials=30), headers={"content-type": "text/yaml"}).json()
        wait_for(lambda: api.get(f"/v1/searches/{first['id']}").json()["state"] == "running", 120, "a running search")
    reconcile, healthy = [], []
    for i in range(rounds):
        progress(f"SIGKILL and restart, round {i + 1} of {rounds}")
        svc.stop(signal.SIGKILL)
        t0 = time.perf_counter()
        svc.start()
        healthy.append(time.perf_counter() - t0)
        found = re.findall(r"reconciled with Ray at \S+ in ([0-9.]+) s", svc.log.read_text())
        reconcile.append(float(found[-1]))
    with svc.client(token) as api:
        api.post(f"/v1/searches/{first['id']}/cancel")
    return reconcile, healthy


def run_bench(rounds: int = 3, searches: int = 20, requests: int = 2000, concurrency: int = 50,
              progress=print) -> ServiceBench:
    with tempfile.TemporaryDirectory(prefix="soup-bench-service-") as tmp:
        root = Path(tmp)
        p50, p99, rps = get_latency(root / "latency", searches, requests, concurrency, progress)
        svc = ServiceProcess(root / "jobs")
        token = make_token(svc.data_dir, "bench", "admin")
        progress("starting a service and its Ray head")
        svc.start()
        try:
            to_state, to_job = post_to_running(svc, token, rounds, progress)
            reconcile, healthy = reconcile_after_restart(svc, token, rounds, progress)
        finally:
            svc.stop()
            svc.stop_ray()
    return ServiceBench(post_to_state_running_s=to_state, post_to_job_running_s=to_job, get_p50_ms=p50,
                        get_p99_ms=p99, get_requests=requests, get_concurrency=concurrency,
                        searches_in_db=searches, requests_per_s=rps, reconcile_after_restart_s=reconcile,
                        restart_to_healthy_s=healthy)


def to_dict(b: ServiceBench) -> dict:
    out = asdict(b)
    for key in ("post_to_state_running_s", "post_to_job_running_s", "reconcile_after_restart_s", "restart_to_healthy_s"):
        out[f"{key}_median"] = statistics.median(out[key])
    return out
