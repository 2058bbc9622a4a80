"""The API on a real server (a `soup-search serve` subprocess on loopback) whose Ray job server
does not answer: searches stay queued, so these checks need no Ray. Auth, scopes, bad configs,
body limit, allowed roots, idempotent creation, filters, health, metrics and the audit log."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import pytest
import yaml

from tests.service.conftest import Service, free_port, make_token, tiny_config_text


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    data = tmp_path_factory.mktemp("api")
    tokens = {name: make_token(data, name, scope) for name, scope in
              (("reader", "read"), ("alice", "write"), ("bob", "write"), ("root", "admin"))}
    svc = Service(data, args=("--ray-address", f"http://127.0.0.1:{free_port()}")).start()
    yield svc, tokens
    svc.stop()


def test_tokens_are_needed_and_scopes_are_enforced(api):
    svc, tokens = api
    with svc.client(None) as anon, svc.client("ss_not-a-token") as bad, svc.client(tokens["reader"]) as reader, \
            svc.client(tokens["alice"]) as alice, svc.client(tokens["bob"]) as bob, svc.client(tokens["root"]) as root:
        for client in (anon, bad):
            r = client.get("/v1/searches")
            assert r.status_code == 401 and set(r.json()) == {"error"} and "token" in r.json()["error"]
        r = reader.post("/v1/searches", content=tiny_config_text(), headers={"content-type": "text/yaml"})
        assert r.status_code == 403 and "'read'" in r.json()["error"]
        created = alice.post("/v1/searches", content=tiny_config_text(), headers={"content-type": "text/yaml"})
        assert created.status_code == 201, created.text
        search = created.json()
        assert search["state"] == "queued" and search["owner"] == "alice" and search["progress"]["budget"] == 4
        assert search["storage"].startswith("sqlite:///") and search["storage"].endswith("state/optuna.sqlite")
        # someone else's search: read yes, change no; an admin may
        assert reader.get(f"/v1/searches/{search['id']}").json()["id"] == search["id"]
        r = bob.post(f"/v1/searches/{search['id']}/cancel")
        assert r.status_code == 403 and "another token" in r.json()["error"]
        r = root.post(f"/v1/searches/{search['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        assert alice.post(f"/v1/searches/{search['id']}/cancel").status_code == 409  # already cancelled
        assert alice.post(f"/v1/searches/{search['id']}/resume").json()["state"] == "queued"
        assert alice.get("/v1/searches/nope").status_code == 404
    audit = sqlite3.connect(svc.data_dir / "service.sqlite").execute(
        "SELECT method, path, status, token_id FROM audit ORDER BY id").fetchall()
    refused = [a for a in audit if a[2] in (401, 403)]
    assert len(refused) >= 4 and {(a[0], a[2]) for a in refused} >= {("GET", 401), ("POST", 403)}
    assert ("POST", "/v1/searches", 201) in {a[:3] for a in audit}
    assert ("POST", f"/v1/searches/{search['id']}/cancel", 200) in {a[:3] for a in audit}
    secrets_stored = sqlite3.connect(svc.data_dir / "service.sqlite").execute("SELECT secret_hash FROM tokens").fetchall()
    assert all(tokens[name] not in h[0] and len(h[0]) == 64 for h in secrets_stored for name in tokens)


def test_a_bad_config_lists_every_problem_and_creates_nothing(api):
    svc, tokens = api
    bad = {"candidates": {"paths": ["/etc", "inputs/missing"]}, "search": {"n_trials": 0, "sampler": "nope"},
           "resources": {"address": "10.0.0.1:6379"}, "colour": "blue"}
    with svc.client(tokens["alice"]) as alice:
        before = len(alice.get("/v1/searches").json()["searches"])
        r = alice.post("/v1/searches", json=bad)
        assert r.status_code == 422
        problems = r.json()["problems"]
        text = " | ".join(problems)
        assert "outside the service's allowed roots" in text and "/etc" in text  # refused before reading it
        assert "'resources.address'" in text and "'search.n_trials'" in text and "'search.sampler'" in text
        assert "unknown key 'colour'" in text and "no checkpoint directory" in text
        r = alice.post("/v1/searches", content="candidates: [unclosed", headers={"content-type": "text/yaml"})
        assert r.status_code == 422 and "not valid YAML" in r.json()["error"]
        r = alice.post("/v1/searches", content=b"x" * (1024 * 1024 + 1), headers={"content-type": "text/yaml"})
        assert r.status_code == 413 and "bytes" in r.json()["error"]
        assert len(alice.get("/v1/searches").json()["searches"]) == before


def test_creation_with_an_id_is_idempotent(api):
    svc, tokens = api
    body = tiny_config_text(name="same")
    with svc.client(tokens["alice"]) as alice, svc.client(tokens["bob"]) as bob:
        first = alice.post("/v1/searches?id=nightly-1", content=body, headers={"content-type": "text/yaml"})
        again = alice.post("/v1/searches?id=nightly-1", content=body, headers={"content-type": "text/yaml"})
        assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
        other = yaml.safe_load(body) | {"name": "other"}
        assert alice.post("/v1/searches?id=nightly-1", json=other).status_code == 409
        assert bob.post("/v1/searches?id=nightly-1", content=body, headers={"content-type": "text/yaml"}).status_code == 409
        assert alice.post("/v1/searches?id=Bad/Id", content=body).status_code == 422
        listed = alice.get("/v1/searches", params={"state": "queued"}).json()["searches"]
        assert [s["id"] for s in listed].count("nightly-1") == 1
        assert alice.get("/v1/searches", params={"state": "sideways"}).status_code == 422


def test_health_and_metrics(api):
    svc, tokens = api
    with svc.client(None) as anon:
        assert anon.get("/healthz").json() == {"status": "ok"}
        metrics = anon.get("/metrics").text
    assert 'soup_search_searches{state="queued"}' in metrics and "soup_search_queue_length" in metrics
    queued = float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith("soup_search_queue_length")))
    with svc.client(tokens["reader"]) as reader:
        assert queued == len(reader.get("/v1/searches", params={"state": "queued"}).json()["searches"]) >= 1
        assert "/v1/searches" in reader.get("/openapi.json").json()["paths"]


def test_a_public_address_needs_a_token_first(tmp_path):
    argv = [sys.executable, "-m", "soup_search", "serve", "--host", "0.0.0.0", "--port", str(free_port()),
            "--data-dir", str(tmp_path), "--ray-address", f"http://127.0.0.1:{free_port()}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "not a loopback address and no token exists" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_sigterm_stops_the_service_cleanly(tmp_path):
    svc = Service(tmp_path, args=("--ray-address", f"http://127.0.0.1:{free_port()}")).start()
    assert svc.stop(signal.SIGTERM) == 0
