"""A folder watch end to end, across a SIGKILL of the service in the middle of its tick: the
child search takes a new compatible checkpoint and skips an incompatible one with a note; the
tick fires once, starts one search, and finishes under the restarted service."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import yaml

from tests.helpers import make_checkpoint
from tests.service.conftest import (
    NEWCOMER, WATCH_ENV, finished_tick, history, make_token, run_dir, searches, trigger, wait_for, watch_template,
)


def test_a_folder_watch_across_a_killed_service(service, watched_models, tmp_path):
    service.env = WATCH_ENV | {"SOUP_SEARCH_CACHE_DIR": str(tmp_path / "cache")}  # a cold score cache
    models = watched_models
    parked = tmp_path / "parked"
    parked.mkdir()
    shutil.move(models / NEWCOMER, parked / NEWCOMER)
    token = make_token(service.data_dir, "alice", "write")
    service.start()
    with service.client(token) as api:
        created = api.post("/v1/watches", json={"name": "folder", "template": watch_template(),
                                                 "source": {"kind": "folder", "path": "models"}})
        assert created.status_code == 201, created.text
        wid = created.json()["id"]
        first = finished_tick(api, wid, trigger(api, wid))
        assert first["outcome"] == "promoted", first
        # a compatible newcomer and an incompatible checkpoint land in the folder
        shutil.copytree(parked / NEWCOMER, models / NEWCOMER)
        make_checkpoint(models / "zz_other_architecture", seed=1)  # not the zoo's architecture
        tick_id = trigger(api, wid)

        def started():
            t = next(t for t in history(api, wid) if t["id"] == tick_id)
            return t if t["search"] and api.get(f"/v1/searches/{t['search']}").json()["state"] == "running" else None
        tick = wait_for(started, 120, "the child search to run", every=0.2)
    # SIGKILL mid-tick: the search runs on in Ray; the next service takes the lease when it lapses
    assert service.stop(signal.SIGKILL) == -signal.SIGKILL
    service.start()
    with service.client(token) as api:
        done = finished_tick(api, wid, tick_id)
        ticks = history(api, wid)
        child = [s for s in searches(api) if s.startswith("folder-")]
    assert done["outcome"] in ("promoted", "kept"), done
    assert [t["id"] for t in ticks] == [tick_id, first["id"]]  # the tick fired once ...
    assert sorted(child) == sorted([first["search"], tick["search"]])  # ... and started one search
    assert done["diff"]["candidates_added"] == [NEWCOMER]
    assert any("zz_other_architecture" in n and "incompatible" in n for n in done["notes"])
    stored = yaml.safe_load((service.data_dir / "searches" / done["search"] / "config.yaml").read_text())
    assert sorted(Path(p).name for p in stored["candidates"]["paths"]) == sorted(
        [p.name for p in models.iterdir() if p.name != "zz_other_architecture"])
    results = json.loads((run_dir(service, done["search"]) / "results.json").read_text())
    assert results["profiled"]["scored"] == [NEWCOMER] and results["lineage"]["carried"] >= 1
