"""Stage 3: the candidate × category score table, profiled on the dev split or read from a leaderboard.

Each candidate goes the way any soup does (a one-model recipe): the shard group hands its
tensors to a free scorer actor through the object store (no disk), and the score lands in
the persistent cache, so a candidate is never scored twice, across runs too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from soup_search.analysis.table import read_score_table
from soup_search.config import RunConfig
from soup_search.engine.session import Session
from soup_search.io.atomic import atomic_file
from soup_search.merge import MergeRecipe
from soup_search.pipeline.progress import SILENT, Progress
from soup_search.scoring.protocol import ScoreResult
from soup_search.search.trial import TrialContext, evaluate_recipe


@dataclass(frozen=True)
class CandidateScores:
    """Every candidate's dev score, and whether it came from the cache."""

    results: dict[str, ScoreResult]
    cached: dict[str, bool]

    def frame(self) -> pd.DataFrame:
        return scores_frame(self.results)


def single_recipe(name: str) -> MergeRecipe:
    """The recipe of one candidate alone (weight 1)."""
    return MergeRecipe.soup({name: 1.0})


def score_candidates(session: Session, split: str = "dev", held_out: bool = False, names=None,
                     progress: Progress = SILENT) -> CandidateScores:
    """Score each candidate on ``split``, as many at a time as there are scorer actors."""
    ctx = TrialContext.of(session, stage="profile")
    names = list(names or session.candidates.names)
    cached: dict[str, bool] = {}
    with progress.task(f"scoring candidates ({split})", len(names)) as advance:
        def one(name: str) -> ScoreResult:
            result, _, hit = evaluate_recipe(single_recipe(name), ctx, split, held_out=held_out)
            cached[name] = hit
            advance({})
            return result

        with ThreadPoolExecutor(max_workers=max(1, len(session.scorers.actors))) as executor:
            results = list(executor.map(one, names))
    return CandidateScores(dict(zip(names, results)), {n: cached[n] for n in names})


def scores_frame(results: dict[str, ScoreResult], categories: list[str] | None = None) -> pd.DataFrame:
    """A model × category table of accuracies (index name ``model``)."""
    frame = pd.DataFrame({name: r.per_category for name, r in results.items()}).T
    if categories:
        frame = frame[[c for c in categories if c in frame.columns]]
    frame.index.name = "model"
    return frame


def write_scores(frame: pd.DataFrame, path: str | Path) -> Path:
    with atomic_file(path) as fh:
        frame.to_csv(fh, float_format="%.6g")
    return Path(path)


def leaderboard_frame(cfg: RunConfig) -> pd.DataFrame:
    """The category table of a config's leaderboard CSV, rows renamed to candidate names."""
    frame = read_score_table(cfg.resolve(cfg.scores.csv), model_column=cfg.scores.model_column,
                             categories=cfg.analysis.categories)
    return frame.rename(index=cfg.scores.rename)
