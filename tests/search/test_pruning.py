"""Pruning: the optimistic full score of a partly scored trial, the scheduler's decisions, and
Optuna's record of a pruned trial (no cluster: the scheduler and searcher are driven directly)."""

from __future__ import annotations

import math

import optuna
import pytest
from ray.tune.schedulers import TrialScheduler

from soup_search.scoring.protocol import ScoreResult
from soup_search.search.chunk_stop import StopWhenClearlyWorse
from soup_search.search.pruning import clearly_worse, optimistic_score
from soup_search.search.space import SearchSpace
from soup_search.search.tuner import ChunkPruner, _StudySearch


def test_optimistic_score_by_hand():
    # two categories, 10 examples each scored, a quarter of the chunks: 3/10 and 5/10
    got = optimistic_score({"a": 0.3, "b": 0.5}, {"a": 10, "b": 10}, 0.25, z=2.0)
    pa, pb = 4 / 12, 6 / 12
    var = 0.25 * 0.75 * (pa * (1 - pa) + pb * (1 - pb)) / 10
    assert got == pytest.approx(0.4 + 2 * math.sqrt(var))
    # every chunk scored: no optimism left
    assert optimistic_score({"a": 0.3, "b": 0.5}, {"a": 10, "b": 10}, 1.0) == pytest.approx(0.4)
    # category weights weigh the mean and the variance alike
    weighted = optimistic_score({"a": 0.3, "b": 0.5}, {"a": 10, "b": 10}, 1.0, weights={"a": 3.0})
    assert weighted == pytest.approx(0.35)


def test_zero_of_a_few_is_not_certainty():
    assert optimistic_score({"a": 0.0}, {"a": 5}, 0.5) > 0.2
    assert optimistic_score({"a": 0.0}, {"a": 500}, 0.5) < 0.03


def test_clearly_worse_needs_a_complete_trial():
    assert not clearly_worse(0.1, None)
    assert clearly_worse(0.1, 0.5) and not clearly_worse(0.5, 0.5)


def chunk(bits: str) -> ScoreResult:
    return ScoreResult({"a": bits.count("1") / len(bits)}, {"a": len(bits)}, 0.1, {"a": bits}, {})


def test_a_scorer_stops_only_below_the_bar_it_was_given():
    """The bar is the best complete value when the trial started: none yet, and nothing stops."""
    bad = [chunk("0" * 40)]  # 0 of 40 after the first of 4 chunks: optimistic ≈ 0.042
    assert not StopWhenClearlyWorse(None, 4).says_stop(bad)
    assert StopWhenClearlyWorse(0.5, 4).says_stop(bad)
    assert not StopWhenClearlyWorse(0.04, 4).says_stop(bad)
    good = [chunk("1" * 30 + "0" * 10)]  # 0.75 so far
    assert not StopWhenClearlyWorse(0.8, 4).says_stop(good)  # within its optimism: scores on
    assert StopWhenClearlyWorse(0.8, 4).says_stop(good + [chunk("0" * 40), chunk("0" * 40)])


class FakeTrial:
    trial_id = "t"


def result(value, upper, complete):
    return {"dev_mean": value, "dev_upper": upper, "complete": complete}


def test_the_scheduler_stops_only_a_clearly_worse_partial_trial():
    pruner = ChunkPruner()
    decide = lambda r: pruner.on_trial_result(None, FakeTrial(), r)  # noqa: E731
    assert decide(result(0.05, 0.1, False)) == TrialScheduler.CONTINUE  # nothing complete yet
    assert decide(result(0.6, 0.6, True)) == TrialScheduler.CONTINUE
    assert pruner.best_complete == 0.6
    assert decide(result(0.3, 0.55, False)) == TrialScheduler.STOP
    assert decide(result(0.5, 0.7, False)) == TrialScheduler.CONTINUE  # could still beat the best
    assert decide(result(0.2, 0.2, True)) == TrialScheduler.CONTINUE  # complete trials always finish
    assert pruner.best_complete == 0.6
    assert ChunkPruner(best_complete=0.9).on_trial_result(None, FakeTrial(), result(0.5, 0.8, False)) == TrialScheduler.STOP


def test_a_stopped_trial_is_pruned_in_optuna_with_its_running_values():
    space = SearchSpace.from_analysis({"x": "a", "y": "b"}, {})
    search = _StudySearch(space=space.suggest, metric="dev_mean", mode="max",
                          sampler=optuna.samplers.RandomSampler(seed=0), seed=0)
    for tid in ("done", "stopped"):
        search.suggest(tid)
    search.on_trial_result("done", {"dev_mean": 0.5, "training_iteration": 1})
    search.on_trial_complete("done", {"dev_mean": 0.6, "complete": True, "training_iteration": 2})
    search.on_trial_result("stopped", {"dev_mean": 0.2, "training_iteration": 1})
    assert search._ot_study.get_trials()[1].intermediate_values == {}  # no storage write per chunk
    search.on_trial_complete("stopped", {"dev_mean": 0.2, "complete": False, "training_iteration": 1})
    trials = search._ot_study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    # Optuna keeps a pruned trial's last running value, which samplers rank below complete trials
    assert trials[0].value == 0.6 and trials[1].intermediate_values == {1: 0.2} and trials[1].value == 0.2
