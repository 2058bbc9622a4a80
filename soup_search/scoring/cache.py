"""A persistent score cache: no weights are ever scored twice on the same objective split.

Keyed by (weights fingerprint, objective fingerprint, split); stored in SQLite so it
survives runs and is safe for several processes (WAL mode, busy timeout).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from soup_search.scoring.protocol import ScoreResult


def cache_key(weights_fp: str, objective_fp: str, split: str) -> str:
    return hashlib.sha256(f"{weights_fp}|{objective_fp}|{split}".encode()).hexdigest()


class ScoreCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, result TEXT NOT NULL, "
            "weights TEXT, objective TEXT, split TEXT, created REAL)"
        )
        self.hits = 0
        self.misses = 0

    def get(self, weights_fp: str, objective_fp: str, split: str) -> ScoreResult | None:
        row = self._db.execute("SELECT result FROM scores WHERE key = ?",
                               (cache_key(weights_fp, objective_fp, split),)).fetchone()
        result = ScoreResult.from_json(json.loads(row[0])) if row is not None else None
        # entries of older versions lack per-example bits or token counts: scored again once, and replaced
        if result is None or not result.correct or not result.generated_tokens:
            self.misses += 1
            return None
        self.hits += 1
        return result

    def put(self, weights_fp: str, objective_fp: str, split: str, result: ScoreResult) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?)",
            (cache_key(weights_fp, objective_fp, split), json.dumps(result.to_json()),
             weights_fp, objective_fp, split, time.time()),
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    def close(self) -> None:
        self._db.close()
