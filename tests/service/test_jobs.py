"""Searches as real Ray Jobs under a real service: the queue, cancel and resume, and a service
(and a Ray head) killed mid-search. Each search is the tiny zoo's, a minute or so."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest
import yaml

from tests.service.conftest import Service, make_token, tiny_config_text, wait_for, wait_state

pytestmark = pytest.mark.slow
DONE = ("succeeded", "failed", "cancelled")


def submit(client, n_trials: int, name: str) -> str:
    r = client.post(f"/v1/searches?id={name}", content=tiny_config_text(n_trials, name=name),
                    headers={"content-type": "text/yaml"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def study_trials(search: dict) -> list[tuple[str, int]]:
    """(state, number) of the search's Optuna trials, read from its storage URL."""
    path = search["storage"].removeprefix("sqlite:///")
    return sqlite3.connect(path).execute("SELECT state, number FROM trials ORDER BY number").fetchall()


def scored_recipes(search: dict) -> list[str]:
    run_db = Path(search["storage"].removeprefix("sqlite:///")).with_name("run.sqlite")
    rows = sqlite3.connect(run_db).execute(
        "SELECT recipe FROM evaluations WHERE stage = 'search' AND cached = 0").fetchall()
    return [r[0] for r in rows]


def assert_complete_study(search: dict, budget: int) -> None:
    states = [s for s, _ in study_trials(search)]
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == budget  # none lost, none beyond the budget
    recipes = scored_recipes(search)
    assert len(recipes) == len(set(recipes))  # no recipe scored twice


def running_with_trials(client, search_id: str, n: int):
    def look():
        body = client.get(f"/v1/searches/{search_id}").json()
        assert body["state"] not in DONE, body
        return body if body["state"] == "running" and body["progress"]["trials"] >= n else None
    return wait_for(look, 600, f"{search_id} to run {n} trials", every=0.25)


def test_queue_cancel_and_resume(service: Service):
    """--max-running 1: the second search waits for the first; cancelling the first lets it run;
    the resumed first search waits its turn (across a SIGTERM restart of the service, while the
    second runs on in Ray), then continues its study where it stopped."""
    service.args = ("--max-running", "1")
    token = make_token(service.data_dir, "alice", "write")
    service.start()
    with service.client(token) as api:
        a = submit(api, 20, "first")  # 8 were all started before a cancel landed, once trials got faster
        b = submit(api, 4, "second")
        running_with_trials(api, a, 2)
        assert api.get(f"/v1/searches/{b}").json()["state"] == "queued"
        cancelled = api.post(f"/v1/searches/{a}/cancel").json()
        assert cancelled["state"] == "cancelled"
        wait_state(api, b, ("running", "succeeded"))
        resumed = api.post(f"/v1/searches/{a}/resume").json()
        assert resumed["state"] == "queued"
        trials_before = len(study_trials(resumed))
    # SIGTERM stops the service cleanly; the running search goes on in Ray meanwhile
    assert service.stop(signal.SIGTERM) == 0
    service.start()
    with service.client(token) as api:
        done_b = wait_state(api, b, DONE)
        done_a = wait_state(api, a, DONE)
        logs = api.get(f"/v1/searches/{a}/logs").text
    assert done_b["state"] == done_a["state"] == "succeeded", (done_a["reason"], done_b["reason"])
    assert done_a["progress"]["trials"] == 20 and done_b["progress"]["trials"] == 4
    assert done_a["ray_job_id"] == f"{a}-2" and logs.count("=====") == 4  # two jobs' logs kept
    assert done_b["ray_job_id"] == b and done_b["attempts"] == 1  # its job outlived the SIGTERM
    assert 2 <= trials_before < 20  # the resumed job continued the same study
    assert_complete_study(done_a, 20)
    assert_complete_study(done_b, 4)
    # the queue: b started only after a was cancelled
    assert done_b["started_at"] >= cancelled["finished_at"]


def test_a_killed_service_and_a_lost_ray_head(service: Service):
    """SIGKILL the service mid-search: the job runs on and the restarted service follows it. Then
    kill the service and the Ray head mid-search: the restarted service finds the job gone and
    resubmits it with --resume; the study ends with exactly its budget, no recipe scored twice."""
    token = make_token(service.data_dir, "alice", "write")
    service.start()
    with service.client(token) as api:
        # a run that fails on bad input (exit 2: more scorers than the cluster has CPUs) is not retried
        too_big = yaml.safe_load(tiny_config_text(4, name="too-big"))
        too_big["resources"]["scorers"] = 8
        assert api.post("/v1/searches?id=too-big", json=too_big).status_code == 201
        failed = wait_state(api, "too-big", DONE)
        assert failed["state"] == "failed" and failed["attempts"] == 1 and "CPUs" in failed["reason"]
        a = submit(api, 40, "crash")  # long enough to outlast a restart under load (24 did not at load 26)
        running_with_trials(api, a, 1)
    assert service.stop(signal.SIGKILL) == -signal.SIGKILL
    service.start()  # the same data dir: the same database and Ray head
    with service.client(token) as api:
        body = running_with_trials(api, a, 4)
        assert body["ray_job_id"] == a and body["attempts"] == 1  # the same job, followed again
    service.stop(signal.SIGKILL)
    service.stop_ray()
    service.start()  # a new head: the job is gone
    with service.client(token) as api:
        done = wait_state(api, a, DONE)
    assert done["state"] == "succeeded", done["reason"]
    assert done["attempts"] == 2 and done["ray_job_id"] == f"{a}-2"
    assert_complete_study(done, 40)
