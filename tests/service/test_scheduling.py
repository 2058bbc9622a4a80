"""The scheduler's parts on a real SQLite database, without Ray: the lease, ticks that fire once
per due time (missed ones coalesced, none while one is open), a tick over a real folder of
checkpoints (changed → a child search queued; unchanged → no change; gone → a source error),
and signed webhook deliveries to real loopback receivers, retried and given up."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import yaml
from sqlalchemy import select

from soup_search.service.db import Database, default_url
from soup_search.service.models import Delivery, Search, Tick, Token, Watch, utcnow
from soup_search.service.scheduler import take_lease
from soup_search.service.settings import Settings
from soup_search.service.ticks import Ticker
from soup_search.service.webhooks import SIGNATURE, Deliverer, emit, sign, verify
from tests.helpers import LoopbackHTTP, make_candidates
from tests.service.conftest import tiny_config_text, wait_for


@pytest.fixture
def db(tmp_path):
    database = Database(default_url(tmp_path))
    yield database
    database.close()


def add_watch(db, tmp_path, **fields) -> int:
    template = yaml.safe_load(tiny_config_text())
    template.pop("candidates")
    with db.session() as s:
        if s.get(Token, 1) is None:
            s.add(Token(id=1, name="alice", scope="write", prefix="ss_x", secret_hash="0" * 64))
            s.flush()
        values = {"owner_id": 1, "name": "w", "source": {"kind": "folder", "path": str(tmp_path / "inputs" / "models")},
                  "template": yaml.safe_dump(template), "schedule": {"interval_s": 60}, "policy": {}, "webhooks": [],
                  "secret": "s" * 64, "deleted": False}
        watch = Watch(**(values | fields))
        s.add(watch)
        s.flush()
        return watch.id


def ticker(db, tmp_path) -> Ticker:
    return Ticker(Settings(data_dir=tmp_path), db, threading.RLock(), lambda: None)


def test_the_lease_has_one_holder_until_it_lapses(db):
    assert take_lease(db, "a", 60) and take_lease(db, "a", 60)  # taken, renewed
    assert not take_lease(db, "b", 60)
    assert take_lease(db, "a", -1)  # a lease that has lapsed ...
    assert take_lease(db, "b", 60) and not take_lease(db, "a", 60)  # ... goes to the next taker


def test_missed_ticks_coalesce_and_none_fires_while_one_is_open(db, tmp_path):
    wid = add_watch(db, tmp_path, next_run_at=utcnow() - timedelta(minutes=5))  # five due times missed
    t = ticker(db, tmp_path)
    assert t.fire_due() == 1 and t.fire_due() == 0
    with db.session() as s:
        watch = s.get(Watch, wid)
        assert watch.next_run_at.replace(tzinfo=None) > utcnow().replace(tzinfo=None)
        watch.next_run_at = utcnow() - timedelta(seconds=1)  # due again while the first is open
    assert t.fire_due() == 0
    with db.session() as s:
        assert len(s.scalars(select(Tick)).all()) == 1


def test_a_tick_queues_a_search_then_sees_no_change_then_a_source_error(db, tmp_path):
    make_candidates(tmp_path / "inputs" / "models", n=2)
    wid = add_watch(db, tmp_path)
    t = ticker(db, tmp_path)
    with db.session() as s:
        first = t.trigger(s, s.get(Watch, wid)).id
    t.advance_all()
    with db.session() as s:
        tick = s.get(Tick, first)
        assert tick.state == "searching" and tick.diff["candidates_added"] == ["m0", "m1"]
        search = s.get(Search, tick.search_id)
        assert search.state == "queued" and search.owner_id == 1
        # as if the search had succeeded: the watch now stands on this revision
        s.get(Watch, wid).revision = tick.revision
        tick.state, tick.outcome = "done", "kept"
    with db.session() as s:
        second = t.trigger(s, s.get(Watch, wid)).id
    t.advance_all()
    with db.session() as s:
        tick = s.get(Tick, second)
        assert (tick.state, tick.outcome, tick.search_id) == ("done", "no_change", None)
        assert len(s.scalars(select(Search)).all()) == 1  # no second search
    (tmp_path / "inputs" / "models").rename(tmp_path / "gone")
    with db.session() as s:
        third = t.trigger(s, s.get(Watch, wid)).id
    t.advance_all()
    with db.session() as s:
        tick = s.get(Tick, third)
        assert tick.outcome == "source_error" and "does not exist" in tick.notes[0]


def test_signatures_verify_and_refuse_tampering_and_replays():
    body = b'{"event":"champion.promoted"}'
    header = sign("k", body, timestamp=1000)
    assert verify("k", header, body, now=1010)
    assert not verify("other", header, body, now=1010)
    assert not verify("k", header, body + b" ", now=1010)
    assert not verify("k", header, body, now=1000 + 3600)  # too old: a replay
    assert not verify("k", "garbage", body, now=1000)


def test_deliveries_are_signed_retried_and_given_up(db, tmp_path):
    good, bad = LoopbackHTTP(status=200), LoopbackHTTP(status=500)
    try:
        wid = add_watch(db, tmp_path, webhooks=[f"{good.url}/hook", f"{bad.url}/hook"])
        with db.session() as s:
            emit(s, s.get(Watch, wid), "champion.promoted", {"search": "s-1"})
        deliverer = Deliverer(db, attempts=3, backoff_s=0.01, timeout_s=5)

        def settled():
            deliverer.run_once()
            with db.session() as s:
                rows = s.scalars(select(Delivery).order_by(Delivery.id)).all()
                return rows if all(r.state != "pending" for r in rows) else None
        rows = wait_for(settled, 30, "the deliveries to settle", every=0.01)
        assert [(r.url, r.state, r.attempts, r.last_status) for r in rows] == [
            (f"{good.url}/hook", "delivered", 1, 200), (f"{bad.url}/hook", "failed", 3, 500)]
        assert len(bad.posts) == 3 and len(good.posts) == 1
        headers, body = good.posts[0]
        assert verify("s" * 64, headers[SIGNATURE], body) and headers["X-Soup-Search-Event"] == "champion.promoted"
        assert b'"search":"s-1"' in body
        deliverer.close()
    finally:
        good.close()
        bad.close()
