"""The watch API on a real server whose Ray job server does not answer (no Ray needed): creation
with every bad input named at once, ownership, a manual trigger that reads the source and queues
a child search, a second trigger refused while the first is open, history, delete."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from tests.helpers import make_candidates
from tests.service.conftest import Service, free_port, make_token, one_line_error, remote, tiny_config_text, wait_for


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    data = tmp_path_factory.mktemp("watch-api")
    make_candidates(data / "inputs" / "models", n=2)
    tokens = {name: make_token(data, name, scope) for name, scope in
              (("reader", "read"), ("alice", "write"), ("bob", "write"))}
    svc = Service(data, args=("--ray-address", f"http://127.0.0.1:{free_port()}"),
                  env={"SOUP_SEARCH_SCHEDULER_S": "0.2"}).start()
    yield svc, tokens
    svc.stop()


def template() -> dict:
    data = yaml.safe_load(tiny_config_text())
    data.pop("candidates")
    return data


def watch_body(**changes) -> dict:
    body = {"name": "models", "source": {"kind": "folder", "path": "models"}, "template": template(),
            "schedule": {"cron": "0 3 * * *"}, "webhooks": ["http://127.0.0.1:9/hook"]}
    return body | changes


def test_bad_watches_are_refused_with_every_problem_named(api):
    svc, tokens = api
    with svc.client(tokens["alice"]) as alice, svc.client(tokens["reader"]) as reader:
        assert reader.post("/v1/watches", json=watch_body()).status_code == 403
        bad_template = template() | {"search": {"sampler": "nope"}}
        r = alice.post("/v1/watches", json=watch_body(schedule={"cron": "every day"}, template=bad_template,
                                                      webhooks=["ftp://x"]))
        assert r.status_code == 422
        problems = r.json()["problems"]
        assert any(p.startswith("'schedule.cron': 'every day' is not a cron expression") for p in problems)
        assert any(p.startswith("'template': 'search.sampler': unknown sampler 'nope'") for p in problems)
        assert any(p.startswith("'webhooks[0]'") for p in problems)
        assert all("\n" not in p for p in problems)
        r = alice.post("/v1/watches", json=watch_body(source={"kind": "folder", "path": "no-such-folder"}))
        assert r.status_code == 422 and any("'source': folder" in p and "does not exist" in p for p in r.json()["problems"])
        r = alice.post("/v1/watches", json=watch_body(source={"kind": "folder", "path": "/etc"}))
        assert r.status_code == 422 and "outside the service's allowed roots" in r.json()["problems"][0]
        r = alice.post("/v1/watches", json=watch_body(template=template() | {"candidates": {"zoo": "tiny"}}))
        assert r.status_code == 422 and r.json()["problems"] == [
            "'template.candidates': the watch fills this in from its source; drop it"]
        r = alice.post("/v1/watches", json=watch_body(source={"kind": "rss", "path": "x"}))
        assert r.status_code == 422 and "source" in r.json()["problems"][0]


def test_a_watch_is_created_triggered_once_at_a_time_and_deleted(api):
    svc, tokens = api
    with svc.client(tokens["alice"]) as alice, svc.client(tokens["bob"]) as bob:
        r = alice.post("/v1/watches", json=watch_body(name="lifecycle"))
        assert r.status_code == 201, r.text
        watch = r.json()
        assert len(watch["secret"]) == 64 and watch["next_run_at"] is not None and watch["owner"] == "alice"
        assert alice.post("/v1/watches", json=watch_body(name="lifecycle")).status_code == 409
        shown = alice.get(f"/v1/watches/{watch['id']}").json()
        assert shown["secret"] is None and shown["schedule"] == {"cron": "0 3 * * *"}
        assert bob.post(f"/v1/watches/{watch['id']}/trigger").status_code == 403
        r = alice.post(f"/v1/watches/{watch['id']}/trigger")
        assert r.status_code == 202 and r.json()["kind"] == "manual"
        tick_id = r.json()["id"]
        again = alice.post(f"/v1/watches/{watch['id']}/trigger")
        assert again.status_code == 409 and f"tick {tick_id} open" in again.json()["error"]

        def searching():
            ticks = alice.get(f"/v1/watches/{watch['id']}/history").json()["ticks"]
            return ticks[0] if ticks and ticks[0]["state"] == "searching" else None
        tick = wait_for(searching, 60, "the tick to queue its search", every=0.2)
        assert tick["diff"]["candidates_added"] == ["m0", "m1"] and tick["parent_search"] is None
        assert tick["revision"].startswith("set:")
        search = alice.get(f"/v1/searches/{tick['search']}").json()
        assert search["state"] == "queued" and search["owner"] == "alice"
        stored = yaml.safe_load(alice.get(f"/v1/searches/{tick['search']}").json() and
                                (svc.data_dir / "searches" / tick["search"] / "config.yaml").read_text())
        assert [p.rsplit("/", 1)[1] for p in stored["candidates"]["paths"]] == ["m0", "m1"]
        assert "lineage" not in stored and stored["resources"]["address"] == "auto"
        assert alice.get(f"/v1/watches/{watch['id']}/champion").status_code == 404
        deliveries = alice.get(f"/v1/watches/{watch['id']}/deliveries").json()["deliveries"]
        assert [d["event"] for d in deliveries] == ["watch.source_changed"]

        assert bob.delete(f"/v1/watches/{watch['id']}").status_code == 403
        assert alice.delete(f"/v1/watches/{watch['id']}").status_code == 200
        assert alice.get(f"/v1/watches/{watch['id']}").status_code == 404
        assert alice.get(f"/v1/searches/{tick['search']}").json()["state"] == "cancelled"
    db = sqlite3.connect(svc.data_dir / "service.sqlite")
    audited = {row[:2] for row in db.execute("SELECT method, path, status FROM audit")}
    assert ("POST", f"/v1/watches/{watch['id']}/trigger") in audited and ("DELETE", f"/v1/watches/{watch['id']}") in audited
    assert db.execute("SELECT outcome FROM ticks WHERE id = ?", (tick_id,)).fetchone() == ("deleted",)


def test_the_client_manages_watches_and_refuses_bad_ones_in_one_line(api, tmp_path):
    svc, tokens = api
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(watch_body(name="cli", schedule={"cron": "99 * * * *"})))
    line = one_line_error(remote("watch", "create", str(bad), server=svc.url, token=tokens["alice"]))
    assert "'schedule.cron': '99 * * * *' is not a cron expression" in line
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(watch_body(name="cli")))
    created = remote("watch", "create", str(good), server=svc.url, token=tokens["alice"])
    assert created.returncode == 0, created.stderr
    watch_id = created.stdout.strip()
    assert watch_id.isdigit() and "webhook secret (shown only now)" in created.stderr
    listed = remote("watch", "list", server=svc.url, token=tokens["reader"])
    assert listed.returncode == 0 and "cli" in listed.stdout and "folder:" in listed.stdout
    fired = remote("watch", "trigger", watch_id, server=svc.url, token=tokens["alice"])
    assert fired.returncode == 0 and "tick" in fired.stdout
    line = one_line_error(remote("watch", "trigger", watch_id, server=svc.url, token=tokens["alice"]))
    assert "409" in line and "open" in line
    shown = remote("watch", "history", watch_id, server=svc.url, token=tokens["reader"])
    assert shown.returncode == 0 and "manual" in shown.stdout
    line = one_line_error(remote("watch", "champion", watch_id, server=svc.url, token=tokens["reader"]))
    assert "no champion yet" in line
    assert remote("watch", "delete", watch_id, server=svc.url, token=tokens["alice"]).returncode == 0
