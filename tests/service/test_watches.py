"""A leaderboard watch end to end: a real service, real Ray Jobs on its embedded head, a real
database, a leaderboard on a loopback HTTP server with an ETag, real tiny-zoo checkpoints, real
webhook receivers. A first search and its champion; no change → no Ray job; a new row → a child
search that carries the parent's trials over and profiles only the newcomer, then the gate's
numbers; signed webhooks, a dead receiver given up; a schema change → a fresh analysis."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml

from soup_search.service.webhooks import SIGNATURE, verify
from tests.helpers import LoopbackHTTP
from tests.service.conftest import (
    NEWCOMER, WATCH_ENV, finished_tick, history, make_token, run_dir, searches, trigger, wait_for, watch_template,
)

def board_csv(rows: list[str], categories=("add", "sort")) -> str:
    """A leaderboard: a row per model, a column per category."""
    return "\n".join([",".join(["Model", *categories])] +
                     [",".join([r, *(f"{50 + i}%" for i, _ in enumerate(categories))]) for r in rows]) + "\n"


def test_a_leaderboard_watch_finds_a_champion_then_a_child_search_carries_over(service, watched_models, tmp_path):
    service.env = WATCH_ENV | {"SOUP_SEARCH_CACHE_DIR": str(tmp_path / "cache")}  # a cold score cache
    models = watched_models
    board, hook, dead = LoopbackHTTP(etag='"v1"'), LoopbackHTTP(status=200), LoopbackHTTP(status=500)
    try:
        rows = sorted(p.name for p in models.iterdir() if p.name != NEWCOMER)
        board.text = board_csv(rows)
        token = make_token(service.data_dir, "alice", "write")
        service.start()
        with service.client(token) as api:
            spec = {"name": "board", "template": watch_template(),
                    "source": {"kind": "leaderboard", "location": f"{board.url}/board.csv",
                               "checkpoint_root": "models", "use_scores": False},
                    "webhooks": [f"{hook.url}/hook", f"{dead.url}/hook"]}
            created = api.post("/v1/watches", json=spec)
            assert created.status_code == 201, created.text
            wid, secret = created.json()["id"], created.json()["secret"]

            first = finished_tick(api, wid, trigger(api, wid))
            assert first["outcome"] == "promoted", first
            assert first["diff"]["candidates_added"] == rows and first["revision"] == 'etag:"v1"'
            champion = api.get(f"/v1/watches/{wid}/champion").json()
            assert champion["search"] == first["search"] and champion["lineage"] == [first["search"]]
            assert {p["name"] for p in champion["parents"]} <= set(rows)
            folder = Path(champion["folder"])
            assert {"soup.yaml", "results.json", "README.md", "provenance.json"} <= {p.name for p in folder.iterdir()}
            assert (folder / "best" / "config.json").is_file()

            # unchanged (same ETag): no change, and no Ray job
            known = searches(api)
            unchanged = finished_tick(api, wid, trigger(api, wid), timeout=60)
            assert unchanged["outcome"] == "no_change" and unchanged["search"] is None and searches(api) == known

            # a row for a new checkpoint: a child of the first search
            board.text, board.etag = board_csv(sorted([*rows, NEWCOMER])), '"v2"'
            child = finished_tick(api, wid, trigger(api, wid))
            assert child["outcome"] in ("promoted", "kept"), child
            assert child["diff"]["candidates_added"] == [NEWCOMER] and child["parent_search"] == first["search"]
            lineage = child["lineage"]
            assert lineage["carried"] >= 1 and lineage["fresh"] == 4 and lineage["chain"] == [first["search"], child["search"]]
            decision = child["decision"]
            assert decision["challenger"] == child["search"] and decision["champion"] == first["search"]
            assert {"delta", "ci_low", "ci_high", "p_value", "n", "category_drop", "reasons"} <= set(decision)
            assert decision["promoted"] == (child["outcome"] == "promoted")
            assert decision["promoted"] == (decision["ci_low"] > 0 and decision["worst_drop"] <= 0.02)

            results = json.loads((run_dir(service, child["search"]) / "results.json").read_text())
            assert results["profiled"]["scored"] == [NEWCOMER]  # the known five came from the score cache
            assert sorted(results["profiled"]["cached"]) == rows
            carried = [t for t in results["trials"] if t.get("carried_from")]
            assert len(carried) == lineage["carried"]
            log = sqlite3.connect(run_dir(service, child["search"]) / "state" / "run.sqlite").execute(
                "SELECT cached, timings FROM evaluations WHERE stage = 'search'").fetchall()
            carried_rows = [row for row in log if "carried_from" in json.loads(row[1])]
            assert len(carried_rows) == lineage["carried"] and all(cached == 1 for cached, _ in carried_rows)

            # webhooks: the live receiver got champion.promoted, signed; the dead one was retried, then given up
            promoted = [(h, b) for h, b in hook.posts if h.get("X-Soup-Search-Event") == "champion.promoted"]
            assert promoted and all(verify(secret, h[SIGNATURE], b) for h, b in promoted)
            assert json.loads(promoted[0][1])["data"]["search"] == first["search"]

            def given_up():
                rows_ = api.get(f"/v1/watches/{wid}/deliveries").json()["deliveries"]
                dead_rows = [d for d in rows_ if d["url"] == f"{dead.url}/hook"]
                return dead_rows if dead_rows and all(d["state"] == "failed" for d in dead_rows) else None
            dead_rows = wait_for(given_up, 60, "the dead receiver's deliveries to be given up", every=0.2)
            assert all(d["attempts"] == 3 and d["last_status"] == 500 for d in dead_rows)

            # a category column appears: the history names the schema change, and nothing is carried over
            board.text, board.etag = board_csv(sorted([*rows, NEWCOMER]), ("add", "sort", "agents")), '"v3"'
            tick = trigger(api, wid)

            def searching():
                t = next(t for t in history(api, wid) if t["id"] == tick)
                return t if t["state"] != "pending" else None
            fresh = wait_for(searching, 60, "the schema-change tick to start its search", every=0.2)
            assert fresh["diff"]["schema_changed"] and fresh["diff"]["categories_added"] == ["agents"]
            assert fresh["parent_search"] is None and any("schema changed: fresh analysis" in n for n in fresh["notes"])
            stored = yaml.safe_load((service.data_dir / "searches" / fresh["search"] / "config.yaml").read_text())
            assert "lineage" not in stored
            assert api.delete(f"/v1/watches/{wid}").status_code == 200
    finally:
        board.close()
        hook.close()
        dead.close()
