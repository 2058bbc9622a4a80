"""What one tick of a watch does, as a small state machine kept in the ``ticks`` table.

``pending``: read the source's revision (no Ray work). Unchanged since the watch's last search →
``done`` / ``no_change``. Unreadable → ``done`` / ``source_error`` (the next tick tries again).
Changed → the diff is recorded, ``watch.source_changed`` is sent, and a child search of the
watch's last search is queued — its row and the tick's move to ``searching`` commit together,
so a tick interrupted anywhere starts at most one search.

``searching``: wait for the search. Failed → ``done`` / ``search_failed``. Succeeded → the
promotion gate decides (:mod:`~soup_search.service.gate`); a promoted soup's artifacts become
the champion (:mod:`~soup_search.service.champion`); ``done`` / ``promoted`` or ``kept``.

Every step re-reads the tick in its own transaction, so a restarted service continues each
open tick where it stood.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from soup_search.errors import ConfigError, SoupSearchError
from soup_search.service import champion, gate, intake, schedule, webhooks
from soup_search.service.db import Database
from soup_search.service.models import (
    ACTIVE, DONE, OPEN_TICK, PENDING, SEARCHING, SUCCEEDED, Search, Tick, Watch, as_utc, utcnow,
)
from soup_search.service.sources import Revision, SourceError, diff, read_source
from soup_search.service.settings import Settings
from soup_search.service.submit import add_search
from soup_search.service.watch_spec import child_config

log = logging.getLogger("soup_search.service.ticks")


class Busy(SoupSearchError):
    """The watch has an open tick; a second one waits for it."""


def watch_dir(settings: Settings, watch_id: int) -> Path:
    return settings.watches_dir / str(watch_id)


def open_tick(s: Session, watch_id: int) -> Tick | None:
    return s.scalar(select(Tick).where(Tick.watch_id == watch_id, Tick.state.in_(OPEN_TICK)).order_by(Tick.id).limit(1))


class Ticker:
    def __init__(self, settings: Settings, db: Database, lock, wake: Callable[[], None]):
        self.settings, self.db, self.lock, self.wake = settings, db, lock, wake

    # ---- firing -----------------------------------------------------------------------
    def fire_due(self) -> int:
        """One tick for each watch that is due and has none open; missed due times coalesce into
        that one (the next due time is computed from now). Returns how many fired."""
        now, fired = utcnow(), 0
        with self.db.session() as s:
            due = s.scalars(select(Watch).where(Watch.deleted.is_(False), Watch.next_run_at.is_not(None),
                                                Watch.next_run_at <= now)).all()
            for watch in due:
                if open_tick(s, watch.id) is not None:
                    continue  # it fires when the open one is done
                s.add(Tick(watch_id=watch.id, kind="scheduled", due_at=as_utc(watch.next_run_at), state=PENDING,
                           notes=[], created_at=now))
                watch.next_run_at = schedule.next_after(watch.schedule, now)
                fired += 1
        return fired

    def trigger(self, s: Session, watch: Watch) -> Tick:
        """A manual tick now (in the caller's transaction); :class:`Busy` while one is open."""
        current = open_tick(s, watch.id)
        if current is not None:
            raise Busy(f"watch {watch.name} has tick {current.id} open ({current.state}); "
                       f"wait for it (GET /v1/watches/{watch.id}/history)")
        now = utcnow()
        tick = Tick(watch_id=watch.id, kind="manual", due_at=now, state=PENDING, notes=[], created_at=now)
        s.add(tick)
        s.flush()
        return tick

    # ---- advancing ----------------------------------------------------------------------
    def advance_all(self) -> None:
        """Move every open tick on as far as it can go now; one failing tick never stops the others."""
        with self.db.session() as s:
            ids = list(s.scalars(select(Tick.id).where(Tick.state.in_(OPEN_TICK)).order_by(Tick.id)))
        for tick_id in ids:
            try:
                self.advance(tick_id)
            except Exception as exc:  # recorded on the tick; the scheduler goes on
                log.exception("tick %s failed", tick_id)
                self._close(tick_id, "error", f"internal error: {type(exc).__name__}: {exc}")

    def advance(self, tick_id: int) -> None:
        with self.db.session() as s:
            state = s.get(Tick, tick_id).state
        if state == PENDING:
            self._read_source(tick_id)
        with self.db.session() as s:
            state = s.get(Tick, tick_id).state
        if state == SEARCHING:
            self._await_search(tick_id)

    def _close(self, tick_id: int, outcome: str, note: str | None = None) -> None:
        with self.db.session() as s:
            tick = s.get(Tick, tick_id)
            if tick.state == DONE:
                return
            tick.state, tick.outcome, tick.finished_at = DONE, outcome, utcnow()
            if note:
                tick.notes = [*tick.notes, note]

    def _read_source(self, tick_id: int) -> None:
        with self.db.session() as s:
            tick = s.get(Tick, tick_id)
            watch = s.get(Watch, tick.watch_id)
            if watch.deleted:
                tick.state, tick.outcome, tick.finished_at = DONE, "deleted", utcnow()
                return
            source, last, watch_id = dict(watch.source), watch.revision, watch.id
        try:
            revision = read_source(source)
        except SourceError as exc:
            self._close(tick_id, "source_error", str(exc))
            return
        if last is not None and last["id"] == revision.id:
            with self.db.session() as s:
                tick = s.get(Tick, tick_id)
                tick.revision = revision.to_json()
            self._close(tick_id, "no_change", f"source revision {revision.id} unchanged")
            return
        change = diff(Revision.from_json(last) if last else None, revision)
        snapshot = self._snapshot(watch_id, tick_id, source, revision)
        with self.lock, self.db.session() as s:
            tick = s.get(Tick, tick_id)
            if tick.state != PENDING:
                return
            watch = s.get(Watch, tick.watch_id)
            tick.revision, tick.diff = revision.to_json(), change
            notes = list(revision.notes)
            parent = s.get(Search, watch.last_search_id) if watch.last_search_id else None
            parent_run = Path(parent.out_dir) if parent is not None else None
            if parent_run is not None and change["schema_changed"]:
                notes.append("schema changed: fresh analysis, nothing carried over from " + parent.id)
                parent_run = None
            elif parent_run is not None and not watch.policy.get("carry_over", True):
                parent_run = None
            data = child_config(yaml.safe_load(watch.template), source, revision, snapshot, parent_run, watch.policy)
            webhooks.emit(s, watch, "watch.source_changed",
                          {"tick": tick.id, "revision": revision.id, "diff": change, "notes": notes})
            try:
                taken = intake.take(yaml.safe_dump(data, sort_keys=False).encode(), "text/yaml",
                                    self.settings.roots + (self.settings.watches_dir.resolve(),))
            except ConfigError as exc:
                tick.notes = notes + [f"the child search's config is not valid: {p}" for p in exc.problems]
                tick.state, tick.outcome, tick.finished_at = DONE, "config_error", utcnow()
                return
            search_id = f"{watch.name}-t{tick.id}"
            add_search(s, self.settings, watch.owner_id, search_id, taken,
                       reason=f"watch {watch.name} tick {tick.id}" + (f", child of {parent.id}" if parent_run else ""))
            tick.search_id, tick.parent_search_id = search_id, parent.id if parent_run is not None else None
            tick.notes, tick.state = notes, SEARCHING
        self.wake()

    def _snapshot(self, watch_id: int, tick_id: int, source: dict, revision: Revision) -> Path | None:
        """The leaderboard's score table as this tick read it, for the run."""
        if source["kind"] != "leaderboard" or not revision.score_table:
            return None
        path = watch_dir(self.settings, watch_id) / "ticks" / str(tick_id) / "scores.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(revision.score_table)
        return path.resolve()

    def _await_search(self, tick_id: int) -> None:
        with self.db.session() as s:
            tick = s.get(Tick, tick_id)
            search = s.get(Search, tick.search_id)
            if search.state in ACTIVE:
                return
            watch = s.get(Watch, tick.watch_id)
            if search.state != SUCCEEDED:
                webhooks.emit(s, watch, "search.failed", {"tick": tick.id, "search": search.id,
                                                          "state": search.state, "reason": search.reason})
                tick.state, tick.outcome, tick.finished_at = DONE, "search_failed", utcnow()
                tick.notes = [*tick.notes, f"search {search.id} {search.state}: {search.reason}"]
                return
            run_dir = Path(search.out_dir)
            champion_search = watch.champion_search_id
            chain = self._chain(s, tick.parent_search_id) + [search.id]
            policy = dict(watch.policy)
            folder = watch_dir(self.settings, watch.id)
        results = json.loads((run_dir / "results.json").read_text())
        fresh = sum(1 for t in results["trials"] if t["stage"] == "search" and not t.get("carried_from"))
        lineage = dict(results.get("lineage") or {"carried": 0, "seeded": 0, "fresh": fresh}) | {"chain": chain}
        current = champion.champion_dir(folder) if champion_search else None
        decision = gate.decide(run_dir, current, margin=float(policy.get("margin", 0.0)),
                               tolerance=float(policy.get("tolerance", 0.02)))
        decision |= {"challenger": search.id, "champion": champion_search}
        if decision["promoted"]:
            with self.db.session() as s:
                revision = s.get(Tick, tick_id).revision
            record = champion.provenance(results, search.id, revision, chain, decision)
            champion.promote(folder, run_dir, results, record, keep_checkpoint=bool(policy.get("checkpoint", True)))
        with self.db.session() as s:
            tick = s.get(Tick, tick_id)
            watch = s.get(Watch, tick.watch_id)
            tick.lineage, tick.decision = lineage, decision
            watch.revision, watch.last_search_id = tick.revision, search.id
            best = results["best"]
            webhooks.emit(s, watch, "search.finished", {
                "tick": tick.id, "search": search.id, "dev_mean": best["dev_mean"], "test_mean": best["test_mean"],
                "lineage": lineage})
            if decision["promoted"]:
                watch.champion_search_id = search.id
                webhooks.emit(s, watch, "champion.promoted", {
                    "tick": tick.id, "search": search.id, "decision": decision,
                    "champion": f"/v1/watches/{watch.id}/champion"})
            tick.state, tick.outcome, tick.finished_at = DONE, "promoted" if decision["promoted"] else "kept", utcnow()

    @staticmethod
    def _chain(s: Session, search_id: str | None) -> list[str]:
        """The searches from the watch's first to ``search_id``, following each tick's parent."""
        chain: list[str] = []
        while search_id is not None and len(chain) < 1000:
            chain.insert(0, search_id)
            parent = s.scalar(select(Tick.parent_search_id).where(Tick.search_id == search_id))
            search_id = parent
        return chain
