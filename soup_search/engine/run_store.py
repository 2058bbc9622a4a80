"""The run's store: the persistent score cache, and this run's trial log.

The trial log (``run.sqlite``, table ``evaluations``) is the one record of what every trial
evaluated: its params, soup weights, per-category dev scores and timings. The report reads
it directly; Optuna's storage only holds the sampler's state. One instance lives in a Ray
actor on the driver's node, so trials on any node reach the same SQLite files; plain
methods keep it testable without Ray.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from soup_search.scoring.cache import ScoreCache
from soup_search.scoring.protocol import ScoreResult

COLUMNS = ("id", "stage", "params", "recipe", "weights", "split", "per_category", "counts", "value",
           "timings", "cached")
_JSON = {"params", "recipe", "weights", "per_category", "counts", "timings"}


def read_evaluations(run_db: str | Path, stage: str | None = None) -> list[dict]:
    """The trial log of ``run_db`` (of one stage), oldest first; readable without Ray."""
    db = sqlite3.connect(run_db, timeout=60)
    try:
        query = f"SELECT {', '.join(COLUMNS)} FROM evaluations"
        args: tuple = ()
        if stage:
            query += " WHERE stage = ?"
            args = (stage,)
        rows = db.execute(query + " ORDER BY id", args).fetchall()
    finally:
        db.close()
    out = []
    for row in rows:
        rec = {c: (json.loads(v) if c in _JSON else v) for c, v in zip(COLUMNS, row)}
        rec["cached"] = bool(rec["cached"])
        out.append(rec)
    return out


class RunStore:
    def __init__(self, run_db: str | Path, cache_db: str | Path):
        self.cache = ScoreCache(cache_db)
        self.run_db = Path(run_db)
        self.run_db.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(run_db, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS evaluations (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "stage TEXT, params TEXT, recipe TEXT, weights TEXT, split TEXT, "
            "per_category TEXT, counts TEXT, value REAL, timings TEXT, cached INTEGER, created REAL)"
        )
        self.scored = 0
        self._best: dict[str, float | None] = {}  # stage -> best complete value logged (read once, then kept)

    # the cache ------------------------------------------------------------------------
    def lookup(self, weights_fp: str, objective_fp: str, split: str) -> ScoreResult | None:
        return self.cache.get(weights_fp, objective_fp, split)

    def remember(self, weights_fp: str, objective_fp: str, split: str, result: ScoreResult) -> None:
        self.scored += 1
        self.cache.put(weights_fp, objective_fp, split, result)

    # the trial log --------------------------------------------------------------------
    def record(self, stage: str, params: dict, recipe: dict, weights: dict, split: str,
               result: ScoreResult, value: float, timings: dict, cached: bool,
               remember: tuple[str, str, str] | None = None) -> None:
        """Add a row to the trial log; with ``remember`` (the score cache's keys) the result goes
        into the score cache first (one call for a trial's two writes)."""
        if remember is not None:
            self.remember(*remember, result)
        if not timings.get("pruned"):
            best = self.best_complete(stage)
            self._best[stage] = value if best is None else max(best, value)
        self._db.execute(
            "INSERT INTO evaluations (stage, params, recipe, weights, split, per_category, counts, "
            "value, timings, cached, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (stage, json.dumps(params), json.dumps(recipe), json.dumps(weights), split,
             json.dumps(result.per_category), json.dumps(result.counts), value, json.dumps(timings),
             int(cached), time.time()),
        )

    def evaluations(self, stage: str | None = None) -> list[dict]:
        return read_evaluations(self.run_db, stage)

    def before_trial(self, stage: str, weights_fp: str, objective_fp: str,
                     split: str) -> tuple[ScoreResult | None, float | None]:
        """What a trial of ``stage`` asks before it scores, in one call: its weights' cached result
        (:meth:`lookup`) and its pruning bar (:meth:`best_complete`)."""
        return self.lookup(weights_fp, objective_fp, split), self.best_complete(stage)

    def best_complete(self, stage: str) -> float | None:
        """The best value of a complete (not pruned) trial logged for ``stage``, or None."""
        if stage not in self._best:
            values = [r["value"] for r in self.evaluations(stage) if not (r["timings"] or {}).get("pruned")]
            self._best[stage] = max(values, default=None)
        return self._best[stage]

    def stats(self) -> dict:
        return {"scored": self.scored, "cache_hits": self.cache.hits, "cache_misses": self.cache.misses}
