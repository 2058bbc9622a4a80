"""Profiling: score every candidate on every category of a split, in parallel.

Each candidate goes the way any soup does (a one-model recipe): the shard actors hand
its tensors to a free scorer actor through the object store — no disk — and the score
lands in the persistent cache, so a candidate is never scored twice, across runs too.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from soup_search.scoring.base import ScoreResult


def candidate_fingerprints(pool) -> dict[str, str]:
    from soup_search.checkpoint import fingerprint_of

    return {c.name: fingerprint_of(c.path) for c in pool.candidates}


def single_recipe(name: str):
    """The recipe of one candidate alone (weight 1)."""
    from soup_search.merge import MergeRecipe

    return MergeRecipe.soup({name: 1.0})


def profile_pool(session, split: str = "dev", held_out: bool = False, names=None,
                 on_result: Callable[[str, ScoreResult, bool], None] | None = None) -> dict[str, ScoreResult]:
    """Score each candidate on ``split``, one scorer actor per candidate at a time."""
    from soup_search.search.trial import evaluate_recipe

    ctx = session.context(stage="profile")
    names = list(names or session.pool.names)

    def one(name: str):
        result, _, cached = evaluate_recipe(single_recipe(name), ctx, split, held_out=held_out)
        if on_result:
            on_result(name, result, cached)
        return result

    with ThreadPoolExecutor(max_workers=max(1, len(session.scorers.actors))) as pool:
        results = list(pool.map(one, names))
    return dict(zip(names, results))


def profile_dev(session, console, progress: bool = True) -> tuple[dict[str, ScoreResult], dict[str, bool]]:
    """Profile every candidate on the dev split with a progress bar; (results, whether each was cached)."""
    from soup_search.ui import trial_progress

    cached: dict[str, bool] = {}
    with trial_progress(console, "profiling candidates", len(session.pool.names), progress) as advance:
        results = profile_pool(session, "dev",
                               on_result=lambda name, r, hit: (cached.__setitem__(name, hit), advance({})))
    return results, cached


def scores_frame(results: dict[str, ScoreResult], categories: list[str] | None = None) -> pd.DataFrame:
    """A model × category table of accuracies (index name ``model``)."""
    frame = pd.DataFrame({name: r.per_category for name, r in results.items()}).T
    if categories:
        frame = frame[[c for c in categories if c in frame.columns]]
    frame.index.name = "model"
    return frame


def write_scores(frame: pd.DataFrame, path: str | Path) -> Path:
    from soup_search.atomic import atomic_file

    with atomic_file(path) as fh:
        frame.to_csv(fh, float_format="%.6g")
    return Path(path)


def leaderboard_frame(cfg):
    """The category table of a config's leaderboard CSV, rows renamed to candidate names."""
    from soup_search.analysis import read_score_table

    frame = read_score_table(cfg.resolve(cfg.scores.csv), model_column=cfg.scores.model_column,
                             categories=cfg.analysis.categories)
    return frame.rename(index=cfg.scores.rename)
