"""One evaluation, as a recipe: params -> merge recipe -> shard actors merge -> a scorer scores -> report.

``evaluate_recipe`` is shared by the search trials and the final held-out report; it
never scores the same weights on the same objective split twice (the score cache).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from soup_search.scoring.base import ObjectiveSpec, ScoreResult
from soup_search.search.space import MODULE_FILTERS, SearchSpace


@dataclass(frozen=True)
class TrialContext:
    """Everything a trial needs, shipped once to Ray Tune via ``tune.with_parameters``."""

    space: SearchSpace
    spec: ObjectiveSpec
    candidate_fps: Mapping[str, str]
    shard_actors: tuple
    free_scorers: object
    store: object  # RunStore actor handle
    dtype: str | None = None
    stage: str = "search"


_OBJECTIVES: dict[str, object] = {}


def _objective(spec: ObjectiveSpec):
    """The built objective of ``spec``, once per process."""
    key = spec.fingerprint()
    if key not in _OBJECTIVES:
        _OBJECTIVES[key] = spec.build()
    return _OBJECTIVES[key]


def objective_value(spec: ObjectiveSpec, per_category: Mapping[str, float]) -> float:
    """The search objective: the objective's (weighted) mean over categories."""
    return float(_objective(spec).aggregate(per_category))


def soup_recipe(soup: Mapping[str, Mapping[str, float]], dtype: str | None = None):
    """A linear merge recipe from ``module -> model -> weight`` (module "all", or "attn"/"mlp")."""
    from soup_search.merge import MergeRecipe

    if set(soup) == {"all"}:
        weights = {m: w for m, w in soup["all"].items() if w > 0}
        recipe = MergeRecipe.soup(weights)
        return recipe.model_copy(update={"dtype": dtype}) if dtype else recipe
    models = sorted({m for per in soup.values() for m in per})
    entries = []
    for m in models:
        attn, mlp = soup["attn"].get(m, 0.0), soup["mlp"].get(m, 0.0)
        entries.append({"model": m, "parameters": {"weight": [
            {"filter": MODULE_FILTERS["attn"], "value": attn},
            {"filter": MODULE_FILTERS["mlp"], "value": mlp},
            {"value": (attn + mlp) / 2},
        ]}})
    data = {"models": entries, "merge_method": "linear", "parameters": {"normalize": True}}
    if dtype:
        data["dtype"] = dtype
    return MergeRecipe.model_validate(data)


def weights_fingerprint(recipe, candidate_fps: Mapping[str, str]) -> str:
    """Identifies merged weights: the recipe plus the content of every checkpoint it uses."""
    used = sorted({m.model for m in recipe.models} | ({recipe.base_model} if recipe.base_model else set()))
    blob = recipe.fingerprint() + "|" + "|".join(f"{m}={candidate_fps[m]}" for m in used)
    return hashlib.sha256(blob.encode()).hexdigest()


def evaluate_recipe(recipe, ctx: TrialContext, split: str = "dev",
                    held_out: bool = False) -> tuple[ScoreResult, dict, bool]:
    """Score the merged weights of ``recipe`` (cached when seen before); returns (result, timings, cached)."""
    import ray

    from soup_search.scoring.actors import score_with_free_scorer

    t0 = time.perf_counter()
    wfp = weights_fingerprint(recipe, ctx.candidate_fps)
    ofp = ctx.spec.fingerprint()
    hit = ray.get(ctx.store.lookup.remote(wfp, ofp, split))
    if hit is not None:
        return hit, {"wall_s": time.perf_counter() - t0, "scoring_s": 0.0}, True
    refs = [actor.merge.remote(recipe) for actor in ctx.shard_actors]
    ray.wait(refs, num_returns=len(refs))
    t_merged = time.perf_counter()
    result = score_with_free_scorer(ctx.free_scorers, refs, ctx.spec, split, held_out=held_out)
    ray.get(ctx.store.remember.remote(wfp, ofp, split, result))
    wall = time.perf_counter() - t0
    return result, {"wall_s": wall, "merge_s": t_merged - t0, "scoring_s": result.seconds}, False


def soup_trial(config: dict, ctx: TrialContext) -> None:
    """The Ray Tune trainable: one soup from the sampled params, scored on the dev split."""
    import ray
    from ray import tune

    t0 = time.perf_counter()
    params = {k: v for k, v in config.items()}
    soup = ctx.space.soup(params)
    recipe = soup_recipe(soup, ctx.dtype)
    result, timings, cached = evaluate_recipe(recipe, ctx, "dev")
    value = objective_value(ctx.spec, result.per_category)
    timings["trial_s"] = time.perf_counter() - t0
    timings["pid"] = os.getpid()
    timings["started"] = time.time() - timings["trial_s"]
    ray.get(ctx.store.record.remote(ctx.stage, "", params,
                                    recipe.model_dump(mode="json"), soup, "dev", result, value, timings, cached))
    tune.report({"dev_mean": value, "cached": cached, **{f"t_{k}": v for k, v in timings.items()}})
