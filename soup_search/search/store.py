"""The run's store: the persistent score cache plus this run's log of evaluations.

One instance lives in a Ray actor on the driver's node (so trials on any node reach the
same SQLite files); plain methods keep it testable without Ray.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from soup_search.scoring.base import ScoreResult
from soup_search.scoring.cache import ScoreCache


class RunStore:
    def __init__(self, run_db: str | Path, cache_db: str | Path):
        self.cache = ScoreCache(cache_db)
        Path(run_db).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(run_db, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS evaluations (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "stage TEXT, name TEXT, params TEXT, recipe TEXT, weights TEXT, split TEXT, "
            "per_category TEXT, counts TEXT, value REAL, timings TEXT, cached INTEGER, created REAL)"
        )
        self.scored = 0

    # the cache ------------------------------------------------------------------------
    def lookup(self, weights_fp: str, objective_fp: str, split: str) -> ScoreResult | None:
        return self.cache.get(weights_fp, objective_fp, split)

    def remember(self, weights_fp: str, objective_fp: str, split: str, result: ScoreResult) -> None:
        self.scored += 1
        self.cache.put(weights_fp, objective_fp, split, result)

    # the run log ----------------------------------------------------------------------
    def record(self, stage: str, name: str, params: dict, recipe: dict, weights: dict, split: str,
               result: ScoreResult, value: float, timings: dict, cached: bool) -> None:
        self._db.execute(
            "INSERT INTO evaluations (stage, name, params, recipe, weights, split, per_category, counts, "
            "value, timings, cached, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (stage, name, json.dumps(params), json.dumps(recipe), json.dumps(weights), split,
             json.dumps(result.per_category), json.dumps(result.counts), value, json.dumps(timings),
             int(cached), time.time()),
        )

    def evaluations(self, stage: str | None = None) -> list[dict]:
        query = "SELECT stage, name, params, recipe, weights, split, per_category, counts, value, timings, cached FROM evaluations"
        args: tuple = ()
        if stage:
            query += " WHERE stage = ?"
            args = (stage,)
        rows = []
        for r in self._db.execute(query + " ORDER BY id", args):
            rows.append({
                "stage": r[0], "name": r[1], "params": json.loads(r[2]), "recipe": json.loads(r[3]),
                "weights": json.loads(r[4]), "split": r[5], "per_category": json.loads(r[6]),
                "counts": json.loads(r[7]), "value": r[8], "timings": json.loads(r[9]), "cached": bool(r[10]),
            })
        return rows

    def stats(self) -> dict:
        return {"scored": self.scored, "cache_hits": self.cache.hits, "cache_misses": self.cache.misses}
