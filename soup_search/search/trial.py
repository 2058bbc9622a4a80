"""One evaluation, as a recipe: params → merge recipe → shard group merges → a free scorer scores → report.

``evaluate_recipe`` is shared by category scores, the search trials and the final held-out
evaluation; it never scores the same weights on the same objective split twice (the score cache).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import ray
from ray import tune

from soup_search.engine.scorer_actors import score_with_free_scorer
from soup_search.engine.session import Session
from soup_search.engine.shard_group import ShardGroup
from soup_search.merge import MergeRecipe
from soup_search.objectives.base import weighted_mean
from soup_search.scoring.protocol import ObjectiveSpec, ScoreResult
from soup_search.search.space import MODULE_FILTERS, SearchSpace


@dataclass(frozen=True)
class TrialContext:
    """Everything a trial needs, shipped once to Ray Tune via ``tune.with_parameters``."""

    space: SearchSpace | None
    spec: ObjectiveSpec
    candidate_fps: Mapping[str, str]
    shards: ShardGroup
    free_scorers: object  # a ray.util.queue.Queue of scorer actors
    store: object  # RunStore actor handle
    stage: str = "search"

    @classmethod
    def of(cls, session: Session, space: SearchSpace | None = None, stage: str = "search") -> TrialContext:
        return cls(space=space, spec=session.spec, candidate_fps=dict(session.candidate_fps),
                   shards=session.shards, free_scorers=session.scorers.free, store=session.store, stage=stage)


def objective_value(spec: ObjectiveSpec, per_category: Mapping[str, float]) -> float:
    """The search objective: the (category-weighted) mean over the search categories (held-out
    ones never count). Needs no objective data, so a trial process never builds the objective."""
    return weighted_mean({c: v for c, v in per_category.items() if c not in spec.held_out_categories},
                         spec.category_weights)


def transfer_value(spec: ObjectiveSpec, per_category: Mapping[str, float]) -> float | None:
    """The mean over the held-out categories (None when there are none)."""
    held = {c: v for c, v in per_category.items() if c in spec.held_out_categories}
    return weighted_mean(held, spec.category_weights) if held else None


def soup_recipe(soup: Mapping[str, Mapping[str, float]]) -> MergeRecipe:
    """A linear merge recipe from ``module -> model -> weight`` (module "all", or "attn"/"mlp")."""
    if set(soup) == {"all"}:
        return MergeRecipe.soup({m: w for m, w in soup["all"].items() if w > 0})
    models = sorted({m for per in soup.values() for m in per})
    entries = []
    for m in models:
        attn, mlp = soup["attn"].get(m, 0.0), soup["mlp"].get(m, 0.0)
        entries.append({"model": m, "parameters": {"weight": [
            {"filter": MODULE_FILTERS["attn"], "value": attn},
            {"filter": MODULE_FILTERS["mlp"], "value": mlp},
            {"value": (attn + mlp) / 2},
        ]}})
    return MergeRecipe.model_validate({"models": entries, "merge_method": "linear", "parameters": {"normalize": True}})


def weights_fingerprint(recipe: MergeRecipe, candidate_fps: Mapping[str, str]) -> str:
    """Identifies merged weights: the recipe plus the content of every checkpoint it uses."""
    used = sorted({m.model for m in recipe.models} | ({recipe.base_model} if recipe.base_model else set()))
    blob = recipe.fingerprint() + "|" + "|".join(f"{m}={candidate_fps[m]}" for m in used)
    return hashlib.sha256(blob.encode()).hexdigest()


def evaluate_recipe(recipe: MergeRecipe, ctx: TrialContext, split: str = "dev",
                    held_out: bool = False) -> tuple[ScoreResult, dict, bool]:
    """Score the merged weights of ``recipe`` (cached when seen before); returns (result, timings, cached)."""
    t0 = time.perf_counter()
    wfp = weights_fingerprint(recipe, ctx.candidate_fps)
    ofp = ctx.spec.fingerprint()
    hit = ray.get(ctx.store.lookup.remote(wfp, ofp, split))
    if hit is not None:
        return hit, {"wall_s": time.perf_counter() - t0, "scoring_s": 0.0}, True
    refs = ctx.shards.merge(recipe)
    ray.wait(refs, num_returns=len(refs))
    t_merged = time.perf_counter()
    result = score_with_free_scorer(ctx.free_scorers, refs, ctx.spec, split, held_out=held_out)
    ray.get(ctx.store.remember.remote(wfp, ofp, split, result))
    wall = time.perf_counter() - t0
    return result, {"wall_s": wall, "merge_s": t_merged - t0, "scoring_s": result.seconds}, False


#: a test hook for crash-resume tests: once this many trials of a stage are logged, every
#: further trial of it blocks before doing anything, until its process is killed ...
BLOCK_AFTER = "SOUP_SEARCH_BLOCK_AFTER_TRIALS"
#: ... and says so on this Unix socket, so the test waits on that instead of polling
BLOCKED_SOCKET = "SOUP_SEARCH_BLOCKED_SOCKET"


def _block_if_asked(ctx: TrialContext) -> None:
    limit = os.environ.get(BLOCK_AFTER)
    if limit and len(ray.get(ctx.store.evaluations.remote(ctx.stage))) >= int(limit):
        path = os.environ.get(BLOCKED_SOCKET)
        if path:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as conn:
                conn.connect(path)
                conn.sendall(b"blocked\n")
        threading.Event().wait()


def soup_trial(config: dict, ctx: TrialContext) -> None:
    """The Ray Tune trainable: params → recipe → merge → score on dev → log → report."""
    _block_if_asked(ctx)
    t0 = time.perf_counter()
    params = dict(config)
    soup = ctx.space.soup(params)
    recipe = soup_recipe(soup)
    result, timings, cached = evaluate_recipe(recipe, ctx, "dev")
    value = objective_value(ctx.spec, result.per_category)
    timings["trial_s"] = time.perf_counter() - t0
    timings["pid"] = os.getpid()
    timings["started"] = time.time() - timings["trial_s"]
    ray.get(ctx.store.record.remote(ctx.stage, params, recipe.model_dump(mode="json"), soup, "dev",
                                    result, value, timings, cached))
    tune.report({"dev_mean": value, "cached": cached, **{f"t_{k}": v for k, v in timings.items()}})
