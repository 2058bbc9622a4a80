"""One evaluation, as a recipe: params → merge recipe → shard group merges → a free scorer scores → report.

A search trial scores the dev split in chunks and reports after each (see :func:`soup_trial`).

``evaluate_recipe`` is shared by category scores and the final held-out evaluation (never
chunked, never pruned); it and the trials never score the same weights on the same objective
split twice (the score cache).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ray
from ray import tune

from soup_search.engine.cluster import Needs, wait_or_refuse
from soup_search.engine.free_list import ScorerLoan
from soup_search.engine.shard_merges import ShardMerges
from soup_search.merge import MergeRecipe
from soup_search.objectives.base import weighted_mean
from soup_search.scoring.chunks import join_chunks, running_result
from soup_search.scoring.protocol import ObjectiveSpec, ScoreResult, WeightsNotLoaded
from soup_search.search.baselines import Space
from soup_search.search.chunk_stop import StopWhenClearlyWorse, upper_score
from soup_search.search.space import MODULE_FILTERS, SearchSpace

if TYPE_CHECKING:  # a trial process never imports the session (nor the scorers' libraries)
    from soup_search.engine.session import Session


@dataclass(frozen=True)
class TrialContext:
    """Everything a trial needs, shipped once to Ray Tune via ``tune.with_parameters``."""

    space: Space | None
    spec: ObjectiveSpec
    candidate_fps: Mapping[str, str]
    shards: ShardMerges  # the shard actors, to merge on
    free_scorers: object  # a ray.util.queue.Queue of scorer actors
    store: object  # RunStore actor handle
    stage: str = "search"
    #: the dev split is scored in this many stratified chunks, each reported to Tune (1: whole)
    chunks: int = 1
    #: what the run's actors reserve: a wait on them ends in one line once the cluster cannot hold it
    needs: Needs | None = None

    @classmethod
    def of(cls, session: Session, space: Space | None = None, stage: str = "search",
           chunks: int = 1) -> TrialContext:
        return cls(space=space, spec=session.spec, candidate_fps=dict(session.candidate_fps),
                   shards=session.shards.merges, free_scorers=session.scorers.free, store=session.store, stage=stage,
                   chunks=chunks, needs=session.needs)


def objective_value(spec: ObjectiveSpec, per_category: Mapping[str, float]) -> float:
    """The search objective: the (category-weighted) mean over the search categories (held-out
    ones never count). Needs no objective data, so a trial process never builds the objective."""
    return weighted_mean({c: v for c, v in per_category.items() if c not in spec.held_out_categories},
                         spec.category_weights)


def transfer_value(spec: ObjectiveSpec, per_category: Mapping[str, float]) -> float | None:
    """The mean over the held-out categories (None when there are none)."""
    held = {c: v for c, v in per_category.items() if c in spec.held_out_categories}
    return weighted_mean(held, spec.category_weights) if held else None


def soup_recipe(soup: Mapping[str, Mapping[str, float]], method: str = "linear", base_model: str | None = None,
                parameters: Mapping | None = None) -> MergeRecipe:
    """A merge recipe from ``module -> model -> weight`` (module "all", or "attn"/"mlp"): a linear
    soup, or ``method`` with ``base_model`` and its global ``parameters``, the weights per model."""
    if set(soup) == {"all"}:
        return MergeRecipe.soup({m: w for m, w in soup["all"].items() if w > 0}, method, base_model,
                                **dict(parameters or {}))
    models = sorted({m for per in soup.values() for m in per})
    entries = []
    for m in models:
        attn, mlp = soup["attn"].get(m, 0.0), soup["mlp"].get(m, 0.0)
        entries.append({"model": m, "parameters": {"weight": [
            {"filter": MODULE_FILTERS["attn"], "value": attn},
            {"filter": MODULE_FILTERS["mlp"], "value": mlp},
            {"value": (attn + mlp) / 2},
        ]}})
    globals_ = {"normalize": True} if method == "linear" else dict(parameters or {})
    return MergeRecipe.model_validate({"models": entries, "merge_method": method, "base_model": base_model,
                                       "parameters": globals_})


def trial_recipe(space: Space, params: Mapping) -> MergeRecipe:
    """The recipe a trial's ``params`` stand for, made with the space's merge method (a space of given
    models, interpolation or task vectors, makes its own)."""
    if not isinstance(space, SearchSpace):
        return space.recipe(params)
    return soup_recipe(space.soup(params), space.method, space.base_model, space.method_parameters(params))


def weights_fingerprint(recipe: MergeRecipe, candidate_fps: Mapping[str, str]) -> str:
    """Identifies merged weights: the recipe plus the content of every checkpoint it uses."""
    used = sorted({m.model for m in recipe.models} | ({recipe.base_model} if recipe.base_model else set()))
    blob = recipe.fingerprint() + "|" + "|".join(f"{m}={candidate_fps[m]}" for m in used)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_keys(recipe: MergeRecipe, ctx: TrialContext, split: str) -> tuple[str, str, str]:
    """The score cache's key of ``recipe``'s merged weights scored on ``split`` of the objective."""
    return weights_fingerprint(recipe, ctx.candidate_fps), ctx.spec.fingerprint(), split


def evaluate_recipe(recipe: MergeRecipe, ctx: TrialContext, split: str = "dev",
                    held_out: bool = False) -> tuple[ScoreResult, dict, bool]:
    """Score the merged weights of ``recipe`` (cached when seen before); returns (result, timings, cached)."""
    t0 = time.perf_counter()
    keys = cache_keys(recipe, ctx, split)
    hit = ray.get(ctx.store.lookup.remote(*keys))
    if hit is not None:
        return hit, {"wall_s": time.perf_counter() - t0, "scoring_s": 0.0}, True
    refs = ctx.shards.merge(recipe)
    wait_or_refuse(refs, ctx.needs)
    t_merged = time.perf_counter()
    with ScorerLoan(ctx.free_scorers) as loan:  # refs as arguments: read zero-copy by the scorer
        result = wait_or_refuse(loan.scorer().score_parts.remote(ctx.spec, split, held_out, *refs), ctx.needs)
    ray.get(ctx.store.remember.remote(*keys, result))
    loan.settle()
    wall = time.perf_counter() - t0
    return result, {"wall_s": wall, "merge_s": t_merged - t0, "scoring_s": result.seconds}, False


#: a test hook for crash-resume tests: once this many trials of a stage are logged, every
#: further trial of it blocks before doing anything, until its process is killed ...
BLOCK_AFTER = "SOUP_SEARCH_BLOCK_AFTER_TRIALS"
#: ... and says so on this Unix socket, so the test waits on that instead of polling
BLOCKED_SOCKET = "SOUP_SEARCH_BLOCKED_SOCKET"
#: a test hook that does not block: once this many trials of a stage are logged, each logged
#: trial says so on the socket above (tests that act mid-search wait on it, not on a poll)
NOTIFY_AFTER = "SOUP_SEARCH_NOTIFY_AFTER_TRIALS"


def _logged_at_least(ctx: TrialContext, variable: str) -> bool:
    limit = os.environ.get(variable)
    return bool(limit) and len(ray.get(ctx.store.evaluations.remote(ctx.stage))) >= int(limit)


def _say_on_socket(message: bytes) -> None:
    path = os.environ.get(BLOCKED_SOCKET)
    if path:  # (a test that stopped listening is no error)
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as conn:
            conn.connect(path)
            conn.sendall(message)


def _block_if_asked(ctx: TrialContext) -> None:
    if _logged_at_least(ctx, BLOCK_AFTER):
        _say_on_socket(b"blocked\n")
        threading.Event().wait()


#: the timings of a trial the score cache answered
NOTHING_SCORED = {"scoring_s": 0.0, "examples_scored": 0, "chunks_scored": 0}


def soup_trial(config: dict, ctx: TrialContext) -> None:
    """The Ray Tune trainable: params → recipe → merge once → score dev chunk by chunk → log → report.

    The scorer scores the chunks in one call and hands them back early only where the trial is
    clearly worse than the best complete one logged (:mod:`~soup_search.search.chunk_stop`); the
    trial then reports the running objective to Tune, whose scheduler may stop it there (pruned).
    Only a trial that scored every chunk is stored in the score cache, as the full dev result.
    """
    _block_if_asked(ctx)
    t0, started = time.perf_counter(), time.time()
    params = dict(config)
    with ScorerLoan(ctx.free_scorers) as loan:  # asked for now; waited for once the lookup misses
        soup = ctx.space.soup(params)
        recipe = trial_recipe(ctx.space, params)
        keys = cache_keys(recipe, ctx, "dev")
        # the lookup (with the pruning bar) and the merge run at once (a hit, rare in a search, wastes one merge)
        looked_up, refs = ctx.store.before_trial.remote(ctx.stage, *keys), ctx.shards.merge(recipe)
        hit, best_complete = ray.get(looked_up)
        if hit is None:
            with _forget_on_failure(ctx.shards, recipe):
                result, progress = _score_dev(ctx, loan, refs, best_complete, t0, started)
    # the scorer is on its way back to the free list: the log and the report do not hold it
    log = functools.partial(_log_trial, ctx, t0, params, recipe, soup)
    if hit is not None:
        value = objective_value(ctx.spec, hit.per_category)
        timings = log(hit, value, NOTHING_SCORED, cached=True)
        loan.settle()
        tune.report(_report(value, value, timings, complete=True, cached=True))
        return
    value = objective_value(ctx.spec, result.per_category)
    timings = log(result, value, progress, remember=keys)
    loan.settle()
    tune.report(_report(value, value, timings, complete=True))


def _score_dev(ctx: TrialContext, loan: ScorerLoan, refs: list, best_complete: float | None, t0: float,
               started: float) -> tuple[ScoreResult, dict]:
    """The trial's dev result from the borrowed scorer, chunk by chunk, and its timings. The scorer
    hands the chunks back early only where the trial is clearly worse than ``best_complete``; the
    trial then reports its running objective to Tune, whose scheduler may stop it there (pruned:
    the driver logs it from that report), and otherwise scores on."""
    t_wait = time.perf_counter()
    scorer = loan.scorer()  # merging meanwhile; waits only while every scorer is busy
    wait_s = time.perf_counter() - t_wait
    ray.wait(refs, num_returns=len(refs))
    merge_s = time.perf_counter() - t0
    load_id, reports, parts = uuid.uuid4().hex, 0, []
    stop = StopWhenClearlyWorse(best_complete, ctx.chunks, ctx.spec.category_weights)
    while True:
        parts += _score_chunks(scorer, ctx, refs, load_id, parts, stop)
        if len(parts) == ctx.chunks:
            result = join_chunks(parts)
            return result, _progress(merge_s, wait_s, result, len(parts)) | {"reports": reports}
        so_far = running_result(parts)
        reports += 1
        progress = _progress(merge_s, wait_s, so_far, len(parts)) | {"reports": reports}
        timings = {**progress, "trial_s": time.perf_counter() - t0, "pid": os.getpid(), "started": started}
        tune.report(_report(objective_value(ctx.spec, so_far.per_category),
                            upper_score(so_far, len(parts) / ctx.chunks, ctx.spec.category_weights), timings,
                            complete=False) | {"partial": _partial(so_far)})


#: times the chunks are asked again of a scorer that lost the trial's weights (it was restarted)
RELOADS = 3


def _score_chunks(scorer, ctx: TrialContext, refs: list, load_id: str, earlier: list[ScoreResult],
                  stop: StopWhenClearlyWorse) -> list[ScoreResult]:
    """The dev split's chunks after ``earlier``, scored on the weights loaded as ``load_id`` until
    ``stop`` says so (the first call loads them, in the same call); a scorer restarted meanwhile
    (its node was lost) gets the weights again first, instead of scoring its template's."""
    load = () if earlier else refs
    for attempt in range(RELOADS + 1):
        try:
            return ray.get(scorer.score_chunks.remote(ctx.spec, "dev", ctx.chunks, load_id, earlier, stop, *load))
        except WeightsNotLoaded:
            if attempt == RELOADS:
                raise
            load = refs
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _forget_on_failure(shards: ShardMerges, recipe: MergeRecipe):
    """A trial that fails on its merged weights (lost with a node) does not leave their refs in the
    shard group's cache for its retry."""
    try:
        yield
    except ray.exceptions.RayError:
        shards.forget(recipe)
        raise


def _partial(result: ScoreResult) -> str:
    return json.dumps({"per_category": result.per_category, "counts": result.counts, "seconds": result.seconds})


def log_pruned(ctx: TrialContext, config: dict, last_report: dict) -> None:
    """The trial log row of a trial that Tune's scheduler stopped, written by the driver from the
    trial's last report: it never races the teardown of the trial's actor."""
    params = dict(config)
    soup = ctx.space.soup(params)
    timings = {k[2:]: v for k, v in last_report.items() if k.startswith("t_")} | {"pruned": True}
    ray.get(ctx.store.record.remote(ctx.stage, params, trial_recipe(ctx.space, params).model_dump(mode="json"),
                                    soup, "dev", ScoreResult(**json.loads(last_report["partial"])), last_report["dev_mean"],
                                    timings, False))


def _progress(merge_s: float, wait_s: float, result: ScoreResult, chunks: int) -> dict:
    """A trial's timings so far: ``merge_s`` from its start until it held merged weights and a scorer,
    ``wait_s`` of that spent waiting for a free scorer, ``scoring_s`` in the scorer's scoring loop."""
    return {"merge_s": merge_s, "wait_s": wait_s, "scoring_s": result.seconds, "examples_scored": result.n,
            "chunks_scored": chunks}


def _log_trial(ctx: TrialContext, t0: float, params: dict, recipe: MergeRecipe, soup: dict,
               result: ScoreResult, value: float, timings: dict, cached: bool = False,
               remember: tuple[str, str, str] | None = None) -> dict:
    """One row of the trial log (pruned rows too: they hold what was scored), and the result in the
    score cache under the keys ``remember`` (first, in the same call); returns its timings."""
    trial_s = time.perf_counter() - t0
    timings = {"pruned": False, **timings, "trial_s": trial_s, "pid": os.getpid(), "started": time.time() - trial_s}
    ray.get(ctx.store.record.remote(ctx.stage, params, recipe.model_dump(mode="json"), soup, "dev",
                                    result, value, timings, cached, remember))
    if _logged_at_least(ctx, NOTIFY_AFTER):
        _say_on_socket(b"logged\n")
    return timings


def log_cached(ctx: TrialContext, config: dict) -> float | None:
    """A point whose dev result the score cache holds (a baseline the profile or another stage
    scored): logged as a cached row of the trial log, without a trial, and its value returned
    (None where the cache does not hold it)."""
    t0 = time.perf_counter()
    params = dict(config)
    recipe = trial_recipe(ctx.space, params)
    if any(m not in ctx.candidate_fps for m in recipe.model_keys):
        return None  # a model outside the candidate set: its trial fails on it, and the stage says so in one line
    hit = ray.get(ctx.store.lookup.remote(*cache_keys(recipe, ctx, "dev")))
    if hit is None:
        return None
    value = objective_value(ctx.spec, hit.per_category)
    _log_trial(ctx, t0, params, recipe, ctx.space.soup(params), hit, value, NOTHING_SCORED, cached=True)
    return value


def _report(value: float, upper: float, timings: dict, complete: bool, cached: bool = False) -> dict:
    """What a trial tells Tune after a chunk: the running objective (``dev_mean``, the study's metric),
    its optimistic full value (``dev_upper``, for the pruner) and whether it is the full dev score."""
    return {"dev_mean": value, "dev_upper": upper, "complete": complete, "cached": cached,
            **{f"t_{k}": v for k, v in timings.items()}}
