"""Stage 7: the held-out evaluation, the only place the test split is ever scored.

The best soup of the search is scored beside the experts, the uniform soups and the grid's
best, on dev (cached from the search) and on the held-out test split. The result is one
frozen :class:`RunResult` that the writers of :mod:`soup_search.pipeline.outputs` take.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from soup_search.analysis.paired import PairedDelta, example_bits, paired_delta
from soup_search.analysis.soce import Analysis
from soup_search.config import RunConfig
from soup_search.engine.session import Session
from soup_search.errors import SoupSearchError
from soup_search.merge import MergeRecipe
from soup_search.pipeline.lineage import Lineage
from soup_search.pipeline.progress import SILENT, Progress
from soup_search.search.baselines import Space
from soup_search.search.interpolation_space import InterpolationSpace
from soup_search.search.lineage import CARRIED_FROM
from soup_search.search.space import SearchSpace
from soup_search.search.task_vector_space import TaskVectorSpace
from soup_search.search.trial import (
    TrialContext, evaluate_recipe, objective_value, soup_recipe, transfer_value, trial_recipe,
)

KINDS = ("soup", "expert", "uniform_all", "uniform_experts", "grid_best", "best_weights_linear", "baseline")


@dataclass(frozen=True)
class TrialRecord:
    """One evaluated trial, as the trial log holds it."""

    number: int
    stage: str
    params: Mapping[str, Any]
    weights: Mapping[str, Mapping[str, float]]
    dev_mean: float
    dev_per_category: Mapping[str, float]
    #: stopped by the pruner: ``dev_mean`` is then the running value over the dev chunks it scored
    pruned: bool = False
    #: the parent study this trial was carried over from (its dev scores are the parent's), or None
    carried_from: str | None = None

    def to_json(self) -> dict:
        return {"number": self.number, "stage": self.stage, "params": dict(self.params),
                "weights": {m: dict(w) for m, w in self.weights.items()}, "dev_mean": self.dev_mean,
                "dev_per_category": dict(self.dev_per_category), "pruned": self.pruned,
                "carried_from": self.carried_from}


@dataclass(frozen=True)
class ComparisonRow:
    """One soup of the held-out comparison, scored on dev and test.

    ``test_correct`` is each test example's correctness ("0"/"1" per category, in split order);
    ``vs_best`` compares the best soup with this row on those examples (None for the soup itself).
    """

    name: str
    kind: str
    recipe: Mapping[str, Any]
    weights: Mapping[str, Mapping[str, float]]
    dev_mean: float
    dev_per_category: Mapping[str, float]
    test_mean: float
    test_per_category: Mapping[str, float]
    test_correct: Mapping[str, str] = field(default_factory=dict)
    vs_best: PairedDelta | None = None
    #: the mean over held-out categories (never searched), and the best soup's difference there
    transfer_mean: float | None = None
    transfer_vs_best: PairedDelta | None = None

    def to_json(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "recipe": dict(self.recipe),
               "weights": {m: dict(w) for m, w in self.weights.items()}, "dev_mean": self.dev_mean,
               "test_mean": self.test_mean, "dev_per_category": dict(self.dev_per_category),
               "test_per_category": dict(self.test_per_category)}
        if self.vs_best is not None:
            out.update(delta=self.vs_best.delta, ci_low=self.vs_best.ci_low, ci_high=self.vs_best.ci_high,
                       p_value=self.vs_best.p_value)
        if self.transfer_mean is not None:
            out["transfer"] = {"mean": self.transfer_mean,
                               **(self.transfer_vs_best.to_json() if self.transfer_vs_best else {})}
        return out


@dataclass(frozen=True)
class RunResult:
    """Everything a finished run found; the writers read only this."""

    config: RunConfig
    analysis: Analysis
    scores: pd.DataFrame
    trials: tuple[TrialRecord, ...]
    best: TrialRecord
    comparison: tuple[ComparisonRow, ...]  # the best soup first
    candidate_paths: Mapping[str, Path]
    timings: Mapping[str, float] = field(default_factory=dict)
    #: the objective's identity (:meth:`ObjectiveSpec.fingerprint`) and each candidate's content fingerprint
    objective_revision: str = ""
    #: the objective's category weights (None: every category counts 1), for comparisons made later
    category_weights: Mapping[str, float] | None = None
    candidate_fps: Mapping[str, str] = field(default_factory=dict)
    #: the candidates profiled now ("scored") and those the score cache answered ("cached")
    profiled: Mapping[str, Sequence[str]] = field(default_factory=lambda: {"scored": [], "cached": []})
    lineage: Lineage | None = None
    #: facts about the objective's data the report must state (``Objective.notes``)
    objective_notes: tuple[str, ...] = ()

    @property
    def best_row(self) -> ComparisonRow:
        return self.comparison[0]

    def best_recipe(self) -> MergeRecipe:
        return MergeRecipe.model_validate(self.best_row.recipe)

    def to_json(self) -> dict:
        row = self.best_row
        return {
            "config": self.config.model_dump(mode="json"),
            "analysis": self.analysis.to_json(),
            "trials": [t.to_json() for t in self.trials],
            "best": {"trial": self.best.number, "params": dict(self.best.params), "recipe": dict(row.recipe),
                     "weights": row.to_json()["weights"], "dev_mean": row.dev_mean, "test_mean": row.test_mean,
                     "test_per_category": dict(row.test_per_category)},
            "comparison": [r.to_json() for r in self.comparison],
            "timings": dict(self.timings),
            "objective_revision": self.objective_revision,
            "category_weights": dict(self.category_weights) if self.category_weights else None,
            "candidates": {n: {"path": str(p), "fingerprint": self.candidate_fps.get(n)}
                           for n, p in self.candidate_paths.items()},
            "profiled": {k: list(v) for k, v in self.profiled.items()},
            "lineage": self.lineage.to_json() if self.lineage is not None else None,
            "objective_notes": list(self.objective_notes),
        }


def trial_records(evaluations: Sequence[Mapping]) -> tuple[TrialRecord, ...]:
    """The trial log's rows as records, numbered per stage in the order they finished."""
    counts: dict[str, int] = {}
    out = []
    for e in evaluations:
        n = counts.get(e["stage"], 0)
        counts[e["stage"]] = n + 1
        timings = e.get("timings") or {}
        out.append(TrialRecord(number=n, stage=e["stage"], params=e["params"], weights=e["weights"],
                               dev_mean=float(e["value"]), dev_per_category=e["per_category"],
                               pruned=bool(timings.get("pruned")), carried_from=timings.get(CARRIED_FROM)))
    return tuple(out)


def best_trial(trials: Sequence[TrialRecord]) -> TrialRecord:
    """The highest dev value; ties go to the earliest trial. Pruned trials never count: their value
    is a running value over part of dev, not a dev score."""
    trials = [t for t in trials if not t.pruned]
    if not trials:
        raise SoupSearchError("the search completed no trial; check the scorer logs and raise search.n_trials")
    return max(trials, key=lambda t: (t.dev_mean, -t.number))


def comparison_specs(candidate_names: Sequence[str], space: Space, analysis: Analysis,
                     best: TrialRecord, grid_best: TrialRecord | None) -> list[tuple[str, str, dict, MergeRecipe]]:
    """(name, kind, soup weights, recipe) of every row of the comparison, the best soup first. The
    best soup and the grid's are made with the search's merge method; with a method other than
    ``linear`` the best soup's weights also come as a linear soup (``best_weights_linear``), which
    shows what the method adds. Experts and uniform soups are linear soups. A search of given models
    (interpolation, task vectors) is compared with its own baselines instead (:func:`given_model_specs`)."""
    if not isinstance(space, SearchSpace):
        return given_model_specs(space, best, grid_best)

    def linear(name, kind, weights):
        return name, kind, weights, soup_recipe(weights)

    best_weights = space.soup(best.params)
    specs = [("best soup", "soup", best_weights, trial_recipe(space, best.params))]
    if space.method != "linear":
        specs.append(linear("best weights, linear", "best_weights_linear", best_weights))
    for name in dict.fromkeys(analysis.experts.values()):
        specs.append(linear(name, "expert", {"all": {name: 1.0}}))
    uniform = {n: 1.0 / len(candidate_names) for n in candidate_names}
    specs.append(linear("uniform_all", "uniform_all", {"all": uniform}))
    k = len(space.groups)
    specs.append(linear("uniform_experts", "uniform_experts", space.soup(space.params_for([1.0 / k] * k))))
    if grid_best is not None:
        specs.append(("grid best", "grid_best", space.soup(grid_best.params), trial_recipe(space, grid_best.params)))
    return specs


def given_model_specs(space: InterpolationSpace | TaskVectorSpace, best: TrialRecord,
                      grid_best: TrialRecord | None) -> list[tuple[str, str, dict, MergeRecipe]]:
    """The comparison of a search of given models: the best soup, the space's baselines (interpolation:
    λ = 0, 0.5, 1; task vectors: α = 0, each vector at 1, all at 1) and the grid's best, every one made
    as its trials are (their dev scores come from the search's cache)."""
    def row(name, kind, params):
        return name, kind, space.soup(params), trial_recipe(space, params)

    specs = [row("best soup", "soup", best.params)]
    specs += [row(name, "baseline", params) for name, params in space.baselines()]
    if grid_best is not None:
        specs.append(row("grid best", "grid_best", grid_best.params))
    return specs


def paired_with_best(rows: Sequence[ComparisonRow], weights: Mapping[str, float] | None = None,
                     held_out_categories: Sequence[str] = (), seed: int = 0) -> tuple[ComparisonRow, ...]:
    """Each row after the first (the best soup) with the paired difference best soup − row on
    the same test examples: a stratified bootstrap 95% CI and a paired permutation p-value. On
    the search categories (``vs_best``) and, apart, on the held-out ones (``transfer_vs_best``)."""
    best = rows[0]
    searched = [c for c in best.test_correct if best.test_correct[c] and c not in held_out_categories]
    held = [c for c in best.test_correct if best.test_correct[c] and c in held_out_categories]
    a, labels = example_bits(best.test_correct, searched)
    held_a, held_labels = example_bits(best.test_correct, held)
    out = [best]
    for row in rows[1:]:
        row = replace(row, vs_best=paired_delta(a, example_bits(row.test_correct, searched)[0], labels, weights, seed=seed))
        if held:
            row = replace(row, transfer_vs_best=paired_delta(held_a, example_bits(row.test_correct, held)[0], held_labels, weights,
                                                             seed=seed))
        out.append(row)
    return tuple(out)


def evaluate_comparison(session: Session, specs: Sequence[tuple[str, str, dict, MergeRecipe]],
                        progress: Progress = SILENT) -> tuple[ComparisonRow, ...]:
    """Score every comparison row on dev (cached) and on the held-out test split, each compared
    with the best soup (the first spec) example by example."""
    ctx = TrialContext.of(session, stage="final")

    def one(item, advance) -> ComparisonRow:
        name, kind, weights, recipe = item
        dev, _, _ = evaluate_recipe(recipe, ctx, "dev")
        test, _, _ = evaluate_recipe(recipe, ctx, "test", held_out=True)
        advance({})
        return ComparisonRow(name=name, kind=kind, recipe=recipe.model_dump(mode="json"), weights=weights,
                             dev_mean=objective_value(session.spec, dev.per_category),
                             dev_per_category=dev.per_category,
                             test_mean=objective_value(session.spec, test.per_category),
                             test_per_category=test.per_category, test_correct=test.correct,
                             transfer_mean=transfer_value(session.spec, test.per_category))

    with progress.task("held-out evaluation", len(specs)) as advance, \
            ThreadPoolExecutor(max_workers=max(1, len(session.scorers.actors))) as executor:
        rows = tuple(executor.map(lambda item: one(item, advance), specs))
    return paired_with_best(rows, session.spec.category_weights, session.spec.held_out_categories)
