"""A curve: a family of merges scored on the dev split, the way every soup is scored.

Each recipe of a :class:`~soup_search.pipeline.curve_family.Family`, and each of its models
alone (the references), is merged by the session's shard actors and scored by a free scorer
actor (:func:`~soup_search.search.trial.evaluate_recipe`: the score cache answers a merge
scored before), as many at a time as there are scorers. A point reports its per-category
accuracy, the mean (the search objective), the mean number of generated tokens per answer,
and the 95% confidence interval of each (:mod:`soup_search.analysis.intervals`); a 1-D curve
also has its regimes (:mod:`soup_search.analysis.regimes`).

Written as ``<stem>.json`` (everything), ``<stem>.csv`` (the table) and ``<stem>.png``.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from soup_search.analysis.intervals import accuracy_interval, mean_accuracy_interval, mean_interval
from soup_search.analysis.regimes import Regime, find_regimes
from soup_search.engine.session import Session
from soup_search.io.atomic import atomic_file
from soup_search.merge import MergeRecipe
from soup_search.pipeline.curve_family import Family
from soup_search.pipeline.curve_plots import plot_curve, plot_module_grid
from soup_search.pipeline.progress import SILENT, Progress
from soup_search.scoring.protocol import ObjectiveSpec, ScoreResult
from soup_search.search.trial import TrialContext, evaluate_recipe, objective_value

#: the files of each kind of curve: ``<stem>.json``, ``<stem>.csv``, ``<stem>.png``
STEMS = {"sweep": "sweep", "module_grid": "sweep_modules", "transfer": "transfer"}


@dataclass(frozen=True)
class CurvePoint:
    """One merge of the curve: its coefficients (``at``), recipe and dev result."""

    at: dict[str, float]
    recipe: MergeRecipe
    result: ScoreResult
    cached: bool
    spec: ObjectiveSpec

    @property
    def mean(self) -> float:
        return objective_value(self.spec, self.result.per_category)

    def to_json(self) -> dict:
        r = self.result
        tokens = [n for per in r.generated_tokens.values() for n in per]
        correct = {c: b.count("1") for c, b in r.correct.items()}
        return {
            **self.at,
            "mean": self.mean,
            "mean_ci": list(mean_accuracy_interval(r.per_category, r.counts, self.spec.category_weights)),
            "mean_tokens": r.mean_tokens,
            "mean_tokens_ci": list(mean_interval(tokens)),
            "per_category": dict(r.per_category),
            "per_category_ci": {c: list(accuracy_interval(correct.get(c, 0), n)) for c, n in r.counts.items()},
            "tokens_per_category": {c: sum(t) / len(t) for c, t in r.generated_tokens.items() if t},
            "counts": dict(r.counts),
            "cached": self.cached,
            "seconds": r.seconds,
            "recipe": self.recipe.to_dict(),
            "per_example": {"correct": dict(r.correct), "generated_tokens": dict(r.generated_tokens)},
        }


@dataclass(frozen=True)
class Curve:
    """A scored family: its points in the family's order, its models alone, and the wall time."""

    family: Family
    models: dict[str, str]  # role -> checkpoint location
    points: tuple[CurvePoint, ...]
    references: dict[str, CurvePoint]
    seconds: float
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        points = [p.to_json() for p in self.points]
        return {
            "kind": self.family.kind, "axes": list(self.family.axes), "split": "dev",
            "models": dict(self.models), "names": dict(self.family.names),
            "objective": {"name": self.points[0].spec.name, "params": dict(self.points[0].spec.params)},
            "points": points,
            "references": {role: p.to_json() for role, p in self.references.items()},
            "regimes": [r.to_json() for r in curve_regimes(self.family.axes, points)],
            "seconds": self.seconds, "notes": list(self.notes),
        }


def curve_regimes(axes: tuple[str, ...], points: list[dict]) -> list[Regime]:
    """The regimes of a 1-D curve over its coefficient, from its points' JSON (none for a 2-D grid).

    The series: the mean accuracy (``accuracy``), the mean generated tokens (``tokens``) and each
    category's accuracy (``accuracy:add``), each with its points' 95% CIs as its noise."""
    if len(axes) != 1:
        return []
    rows = sorted(points, key=lambda p: p[axes[0]])

    def widths(cis) -> list[float]:
        return [high - low for low, high in cis]

    found = {"accuracy": ([p["mean"] for p in rows], widths(p["mean_ci"] for p in rows))}
    if all(p["mean_tokens"] is not None for p in rows):
        found["tokens"] = ([p["mean_tokens"] for p in rows], widths(p["mean_tokens_ci"] for p in rows))
    for c in dict.fromkeys(c for p in rows for c in p["per_category"]):
        if all(c in p["per_category"] for p in rows):
            found[f"accuracy:{c}"] = ([p["per_category"][c] for p in rows],
                                       widths(p["per_category_ci"][c] for p in rows))
    return find_regimes([p[axes[0]] for p in rows], found)


def score_family(session: Session, family: Family, models: dict[str, str], progress: Progress = SILENT,
                 notes: tuple[str, ...] = ()) -> Curve:
    """Score every point of ``family`` and each of its models alone; each distinct merge once."""
    start = time.perf_counter()
    ctx = TrialContext.of(session, stage=family.kind)
    references = family.references()
    recipes = {r.fingerprint(): r for r in [*references.values(), *(recipe for _, recipe in family.points)]}
    with progress.task(f"scoring {len(recipes)} merges ({family.kind})", len(recipes)) as advance:
        def one(recipe: MergeRecipe) -> tuple[ScoreResult, bool]:
            result, _, cached = evaluate_recipe(recipe, ctx, "dev")
            advance({"dev_mean": objective_value(session.spec, result.per_category)})
            return result, cached

        with ThreadPoolExecutor(max_workers=max(1, len(session.scorers.actors))) as executor:
            scored = dict(zip(recipes, executor.map(one, recipes.values())))

    def point(at: dict, recipe: MergeRecipe) -> CurvePoint:
        return CurvePoint(dict(at), recipe, *scored[recipe.fingerprint()], session.spec)

    return Curve(family, dict(models), tuple(point(at, r) for at, r in family.points),
                 {role: point({}, r) for role, r in references.items()}, time.perf_counter() - start, notes)


def curve_frame(data: dict) -> pd.DataFrame:
    """The table of a curve's JSON: one row per point (coefficients, per-category accuracy, the
    mean and its 95% CI, the mean generated tokens and their 95% CI, whether it was cached)."""
    rows = []
    for p in data["points"]:
        rows.append({**{a: p[a] for a in data["axes"]}, **p["per_category"], "mean": p["mean"],
                     "mean_ci_low": p["mean_ci"][0], "mean_ci_high": p["mean_ci"][1],
                     "mean_tokens": p["mean_tokens"], "mean_tokens_ci_low": p["mean_tokens_ci"][0],
                     "mean_tokens_ci_high": p["mean_tokens_ci"][1], "cached": p["cached"]})
    return pd.DataFrame(rows)


def write_curve(data: dict, out: str | Path) -> dict[str, Path]:
    """A curve's JSON as ``<stem>.json``, ``<stem>.csv`` and ``<stem>.png`` in ``out``; returns them by suffix."""
    out = Path(out)
    stem = STEMS[data["kind"]]
    paths = {s: out / f"{stem}.{s}" for s in ("json", "csv", "png")}
    with atomic_file(paths["json"]) as fh:
        json.dump(data, fh, indent=1)
    with atomic_file(paths["csv"]) as fh:
        curve_frame(data).to_csv(fh, index=False, float_format="%.6g")
    (plot_module_grid if data["kind"] == "module_grid" else plot_curve)(data, paths["png"])
    return paths
