"""Ray Tune + Optuna: the study lives in a persistent Optuna storage, trials run under Tune.

Resuming is a property of the storage: the same study name on the same storage picks
up where it stopped. Trials left RUNNING by a killed driver are marked FAILED (their
scores, if any, are in the score cache, so re-proposing them costs nothing), baselines
already evaluated are not enqueued again, and only the remaining budget is run.

Pruning (``search.prune``): trials score the dev split chunk by chunk and report the running
dev objective after a chunk where the scheduler could stop them (clearly worse than the best
complete trial logged so far; :func:`~soup_search.search.trial.soup_trial`), and
:class:`ChunkPruner`, a Tune scheduler, stops one that is clearly worse
(:mod:`soup_search.search.pruning`). Optuna records a stopped trial as PRUNED, with its last
running value as its intermediate value; it counts in the budget.

Why neither ASHA nor an Optuna pruner: ASHA stops every trial below a rung's top
1/reduction_factor, whatever the gap and however few examples a rung has seen (and the first
trial at a rung sets the bar), so it stops good soups on noise; and OptunaSearch runs its study
with a NopPruner and Tune asks the scheduler before the searcher sees a result, so an Optuna
pruner would need this same scheduler around it. The rule here needs only each trial's own
results and the best complete value, which a scheduler sees in order, and works with
OptunaSearch and reused actors as they are.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import optuna
import ray
from optuna.trial import TrialState
from ray import tune
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch
from ray.tune.stopper import CombinedStopper

from soup_search.engine.cluster import HEAD_RESOURCE, TRIAL_CPUS, TRIAL_SLOT, driver_on_head, lost_nodes_error
from soup_search.errors import SearchError
from soup_search.search.lineage import CARRIED_FROM, PARENT_TRIAL
from soup_search.search.pruning import clearly_worse
from soup_search.search.samplers import make_sampler
from soup_search.search.storage import open_storage
from soup_search.search.trial import TrialContext, log_cached, log_pruned, soup_trial


#: trials that count in the budget: scored in full, or stopped by the pruner
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(abs(a[k] - b[k]) < 1e-9 if isinstance(a[k], float) else a[k] == b[k] for k in a)


def prepare_study(storage, study_name: str, points: Sequence[dict], logged: Sequence[Mapping] = (),
                  distributions: Mapping | None = None) -> tuple[int, list[dict]]:
    """(trials done, points not yet evaluated) of a study about to run, after reconciling it
    with the trial log.

    The trial log is the record of what was evaluated. A driver killed between a trial's log
    row and Optuna's ``tell`` leaves a row that Optuna does not count: such rows are added to
    the study as completed trials (the sampler learns from them, the budget counts them).
    Rows carried over from a parent run (:mod:`soup_search.search.lineage`) enter the same way,
    with their origin as user attributes; the sampler learns from them, the budget does not
    count them. Trials left RUNNING or WAITING are marked FAIL.
    """
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        if not logged:
            return 0, list(points)
        study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize")
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    told = [t.params for t in study.get_trials(deepcopy=False, states=FINISHED)]
    for row in logged:
        match = next((i for i, p in enumerate(told) if _same(p, row["params"])), None)
        if match is not None:
            told.pop(match)
        elif distributions is not None:
            study.add_trial(_logged_trial(row, distributions))
    finished = study.get_trials(deepcopy=False, states=FINISHED)
    todo = [p for p in points if not any(_same(p, t.params) for t in finished)]
    return sum(CARRIED_FROM not in t.user_attrs for t in finished), todo


def _logged_trial(row: Mapping, distributions: Mapping) -> optuna.trial.FrozenTrial:
    """A trial log row as an Optuna trial: complete (carried over from a parent run or not), or
    pruned at its last chunk."""
    dists = {k: distributions[k] for k in row["params"]}
    timings = row.get("timings") or {}
    if timings.get("pruned"):
        step = int(timings.get("chunks_scored", 1))
        return optuna.trial.create_trial(params=dict(row["params"]), distributions=dists, state=TrialState.PRUNED,
                                         intermediate_values={step: float(row["value"])})
    attrs = {k: timings[k] for k in (CARRIED_FROM, PARENT_TRIAL) if k in timings}
    return optuna.trial.create_trial(params=dict(row["params"]), value=float(row["value"]), distributions=dists,
                                     user_attrs=attrs)


def enter_cached(ctx: TrialContext, storage, study_name: str, points: Sequence[dict],
                 distributions: Mapping) -> tuple[list[float], list[dict]]:
    """The points whose dev result the score cache holds (the baselines, mostly: the profile scored
    each expert alone) enter the trial log and the study as complete trials without a Tune trial;
    returns their values and the points left to run.

    Not only cheaper (no turn of Tune's per trial): a Tune trial that ends in milliseconds frees
    its actor before the stage's other trial actors have started, and Tune then hands that actor
    to the next trial and drops the one starting for it, so that a stage opening with cached
    baselines ran one trial at a time to its end in about 4 stages of 10. The log row comes first;
    a driver killed before the study learns of it is reconciled by :func:`prepare_study`."""
    values, rest, study = [], [], None
    for point in points:
        value = log_cached(ctx, point)
        if value is None:
            rest.append(point)
            continue
        if study is None:
            study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize",
                                        load_if_exists=True)
        study.add_trial(_logged_trial({"params": point, "value": value, "timings": {}}, distributions))
        values.append(value)
    return values, rest


def completed_trials(storage, study_name: str) -> list:
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return []
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


class ChunkPruner(FIFOScheduler):
    """Stops a trial after a chunk when it is clearly worse than the best complete trial
    (:func:`~soup_search.search.pruning.clearly_worse`); complete trials are never stopped."""

    def __init__(self, best_complete: float | None = None):
        super().__init__()
        self.best_complete = best_complete

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if result.get("complete"):
            value = result["dev_mean"]
            self.best_complete = value if self.best_complete is None else max(self.best_complete, value)
            return TrialScheduler.CONTINUE
        if clearly_worse(result["dev_upper"], self.best_complete):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE


class _StudySearch(OptunaSearch):
    """OptunaSearch that tells Optuna a trial the scheduler stopped before its last chunk as PRUNED
    (its last result is a running value, not the trial's value), with that running value as its
    one intermediate value: written once, at the end, not to the storage after every chunk (a
    database write that the trial would wait for)."""

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        pass  # the running values reach Optuna in on_trial_complete

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pruned = result is not None and not result.get("complete", True)
        if pruned and trial_id in self._ot_trials and trial_id not in self._completed_trials:
            self._ot_trials[trial_id].report(result[self.metric], result[TRAINING_ITERATION])
        super().on_trial_complete(trial_id, None if pruned else result, error)


class _StopAt(tune.Stopper):
    """Ends the whole run once a complete trial reaches ``target`` (the search bench's goal)."""

    def __init__(self, target: float):
        self.target, self.reached = target, False

    def __call__(self, trial_id: str, result: dict) -> bool:
        if result.get("complete") and result["dev_mean"] >= self.target - 1e-9:
            self.reached = True
        return False

    def stop_all(self) -> bool:
        return self.reached


class _CapacityWatch(tune.Stopper):
    """Ends the run once the cluster's live nodes can no longer hold its actors (a node lost for
    good): Tune polls :meth:`stop_all` every step, so this fires even while every trial waits on
    an actor that has nowhere to restart. Checked every ``every_s`` seconds."""

    def __init__(self, problem: Callable[[], str | None], every_s: float = 2.0):
        self.find_problem, self.every_s = problem, every_s
        self.problem: str | None = None
        self._next = 0.0

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def __getstate__(self):  # Tune saves its experiment state; the check stays with the driver
        return {**self.__dict__, "find_problem": lambda: None}

    def stop_all(self) -> bool:
        now = time.monotonic()
        if self.problem is None and now >= self._next:
            self._next = now + self.every_s
            self.problem = self.find_problem()
        return self.problem is not None


class _OnResult(tune.Callback):
    """Forwards each finished trial's result to a function (progress); dropped when Tune pickles its state."""

    def __init__(self, fn):
        self.fn = fn

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self.fn is not None:
            result = trial.last_result or {}
            self.fn(result if result.get("complete", True) else {"pruned": True})

    def __getstate__(self):
        return {"fn": None}


class _LogPruned(tune.Callback):
    """Writes the trial log row of each trial the scheduler stopped, from its last report."""

    def __init__(self, ctx: TrialContext):
        self.ctx = ctx

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        if self.ctx is not None and result.get("complete") is False and "partial" in result:
            log_pruned(self.ctx, trial.config, result)

    def __getstate__(self):
        return {"ctx": None}


def run_study(ctx: TrialContext, *, storage_url: str, study_name: str, n_trials: int, sampler: str,
              seed: int, points: Sequence[dict], concurrency: int, tune_dir: str | Path,
              on_trial: Callable[[dict], None] | None = None, prune: bool = False,
              stop_at: float | None = None, capacity: Callable[[], str | None] | None = None) -> int:
    """Run the study until it holds ``n_trials`` finished trials (complete or pruned); returns how
    many ran now. With ``prune`` (and ``ctx.chunks`` > 1) clearly worse trials are stopped early;
    with ``stop_at`` the run ends once a complete trial reaches that dev value. ``tune_dir`` is a
    path or an fsspec URL. ``capacity`` says why the cluster can no longer hold the run's actors
    (or None): the run then stops with a :class:`ClusterError` (``--resume`` continues it)."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("TUNE_RESULT_BUFFER_LENGTH", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter honours verbose=0
    # One trial per scorer, no more. Tune hands a finished trial's actor to the next trial
    # (reuse_actors), and a trial whose own actor is still starting takes a finished one's
    # instead, removing its own: with one trial more than scorers, the extra trial's worker was
    # started and thrown away every few trials, a Python process start each time (on 2 cores the
    # scoring slowed by 40%, and the searches ran one trial at a time).
    live = concurrency
    resources = {"cpu": TRIAL_CPUS}
    slots = int(ray.cluster_resources().get(TRIAL_SLOT, 0))
    if slots:  # a local instance: staged trials wait for a slot instead of starting workers
        resources[TRIAL_SLOT] = 1
        live = min(live, slots)
    elif driver_on_head():  # a cluster: trials run beside the driver, never on a worker node that may go
        resources[HEAD_RESOURCE] = 0.001
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(live)
    for name in ("ray.tune", "ray.train", "ray.air"):  # a failed trial's traceback goes to its folder,
        logging.getLogger(name).setLevel(logging.CRITICAL)  # and the stage ends in one line (SearchError)
    storage = open_storage(storage_url)
    try:
        logged = ray.get(ctx.store.evaluations.remote(ctx.stage))
        done, todo = prepare_study(storage, study_name, points, logged, ctx.space.distributions())
        remaining = n_trials - done
        if on_trial is not None and done:
            on_trial({"resumed": min(done, n_trials)})
        if remaining <= 0:
            return 0
        cached, todo = enter_cached(ctx, storage, study_name, todo[:remaining], ctx.space.distributions())
        for value in cached if on_trial is not None else ():
            on_trial({"dev_mean": value, "complete": True, "cached": True})
        remaining -= len(cached)
        if remaining <= 0 or (stop_at is not None and any(v >= stop_at - 1e-9 for v in cached)):
            return len(cached)

        searcher = _StudySearch(
            space=ctx.space.suggest, metric="dev_mean", mode="max", sampler=make_sampler(sampler, seed),
            study_name=study_name, storage=storage, points_to_evaluate=todo[:remaining] or None, seed=seed,
        )

        callbacks = [_LogPruned(ctx)] + ([_OnResult(on_trial)] if on_trial is not None else [])
        scheduler = None
        if prune and ctx.chunks > 1:
            complete = completed_trials(storage, study_name)
            scheduler = ChunkPruner(max((t.value for t in complete), default=None))

        stoppers = ([_StopAt(stop_at)] if stop_at is not None else []) + (
            [watch := _CapacityWatch(capacity)] if capacity is not None else [])
        trainable = tune.with_resources(tune.with_parameters(soup_trial, ctx=ctx), resources)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=remaining, scheduler=scheduler,
                                        max_concurrent_trials=live, reuse_actors=True),
            run_config=tune.RunConfig(
                name=f"{study_name}-{done}", storage_path=storage_location(tune_dir), verbose=0,
                failure_config=tune.FailureConfig(max_failures=2), callbacks=callbacks,
                stop=CombinedStopper(*stoppers) if len(stoppers) > 1 else (stoppers or [None])[0],
            ),
        )
        with warnings.catch_warnings():
            # Tune warns when the define-by-run space takes over a second: it is the sampler's own
            # work (GP/TPE fitting), not computation misplaced outside the trainable
            warnings.filterwarnings("ignore", message="Define-by-run function", category=UserWarning)
            results = tuner.fit()
        if capacity is not None and watch.problem:
            raise lost_nodes_error(watch.problem)
        if results.errors:
            raise failed_trials_error(study_name, len(results.errors), remaining, results.errors[0],
                                      results.experiment_path)
        return len(cached) + remaining
    finally:
        storage.engine.dispose()  # no idle connection left on a database server between stages


def failed_trials_error(study_name: str, failed: int, trials: int, first: BaseException,
                        where: str) -> SearchError:
    """One line for a stage whose trials failed even when retried: how many, the first one's reason,
    and where Tune keeps their tracebacks."""
    lines = [line.strip() for line in str(first).splitlines() if line.strip()]
    reason = lines[-1] if lines else type(first).__name__
    return SearchError(f"search {study_name!r}: {failed} of {trials} trials failed even when retried, the first "
                       f"with: {reason}; fix that and run again (tracebacks: the error.txt files under {where})")


def storage_location(tune_dir: str | Path) -> str:
    """Tune's ``storage_path``: an fsspec URL as given, a filesystem path made absolute."""
    return str(tune_dir) if "://" in str(tune_dir) else str(Path(tune_dir).resolve())
