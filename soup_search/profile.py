"""Profiling: score every candidate on every category of the dev split, in parallel.

Each candidate goes the same way a soup does: the shard actors hand its tensors (a
one-model recipe) to a free scorer actor through the object store — no disk. Results
land in the persistent score cache, so a candidate is never scored twice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from soup_search.scoring.base import ObjectiveSpec, ScoreResult
from soup_search.scoring.cache import ScoreCache


def candidate_fingerprints(pool) -> dict[str, str]:
    from soup_search.checkpoint import fingerprint_of

    return {c.name: fingerprint_of(c.path) for c in pool.candidates}


def profile_pool(pool, spec: ObjectiveSpec, shards, scorers, cache: ScoreCache, split: str = "dev",
                 on_result: Callable[[str, ScoreResult, bool], None] | None = None) -> dict[str, ScoreResult]:
    """Score each candidate of ``pool`` on ``split``; cached scores are reused, not recomputed."""
    from ray.util import ActorPool

    from soup_search.merge import MergeRecipe

    fps = candidate_fingerprints(pool)
    objective_fp = spec.fingerprint()
    results: dict[str, ScoreResult] = {}
    todo: list[str] = []
    for name in pool.names:
        hit = cache.get(fps[name], objective_fp, split)
        if hit is None:
            todo.append(name)
            continue
        results[name] = hit
        if on_result:
            on_result(name, hit, True)

    def submit(actor, name):
        refs = shards.merge(MergeRecipe.soup({name: 1.0}))
        return actor.score_parts.remote(refs, spec, split)

    for name, result in zip(todo, ActorPool(scorers.actors).map(submit, todo)):
        cache.put(fps[name], objective_fp, split, result)
        results[name] = result
        if on_result:
            on_result(name, result, False)
    return {name: results[name] for name in pool.names}


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
