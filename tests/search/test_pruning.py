"""Pruning: the optimistic full score of a partly scored trial (unpaired, and paired with the
bar's answers), the scheduler's decisions, and Optuna's record of a pruned trial (no cluster:
the scheduler and searcher are driven directly)."""

from __future__ import annotations

import math

import optuna
import pytest
from ray.tune.schedulers import TrialScheduler

from soup_search.scoring.protocol import ScoreResult
from soup_search.search.chunk_stop import StopWhenBehind, upper_score
from soup_search.search.pruning import Bar, bar_answers, falls_behind, optimistic_score, paired_optimistic_score
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


def test_falling_behind_needs_a_complete_trial():
    assert not falls_behind(0.1, None)
    assert falls_behind(0.1, 0.5) and not falls_behind(0.5, 0.5)


def test_the_bars_answers_are_taken_chunk_by_chunk():
    # chunk i of 4 holds examples i, i + 4, ...: the bar's answers in the order a trial holds its own
    assert bar_answers({"a": "10000100"}, 1, 4) == {"a": "10"}
    assert bar_answers({"a": "10000100"}, 2, 4) == {"a": "1001"}
    assert bar_answers({"a": "10000100"}, 4, 4) == {"a": "10010000"}


def test_paired_optimistic_score_by_hand():
    # one category, 8 examples, the first of 4 chunks scored (examples 0 and 4): the trial got
    # example 0 right where the bar did not, and example 4 wrong where the bar got it right
    bar = Bar(0.3, {"a": "01011010"})  # the bar's chunk 0: examples 0, 4 -> "01"
    got = paired_optimistic_score({"a": "10"}, bar, 1, 4, z=1.0)
    p = 1.5 / 3  # (1 + 0.5) / (2 + 1), for + and for −
    assert got == pytest.approx(0.3 + 0.0 + math.sqrt(0.75 * (p + p) / 2))
    # behind by one example of two, no gain: the estimate is the bar's value minus 1/2, plus z SDs
    p_plus, p_minus = 0.5 / 3, 1.5 / 3
    var = 0.75 * (p_plus + p_minus - (p_plus - p_minus) ** 2) / 2
    assert paired_optimistic_score({"a": "00"}, bar, 1, 4, z=0.5) == pytest.approx(0.3 - 0.5 + 0.5 * math.sqrt(var))
    # every chunk scored: the exact difference, no optimism left
    assert paired_optimistic_score(bar_answers({"a": "01011011"}, 4, 4), bar, 4, 4) == pytest.approx(0.3 + 1 / 8)
    # category weights weigh the gain and the variance alike
    two = Bar(0.5, {"a": "1111", "b": "0000"})
    assert paired_optimistic_score({"a": "0000", "b": "1111"}, two, 1, 1, weights={"a": 3.0}) == pytest.approx(
        0.5 - 0.75 + 0.25)
    with pytest.raises(ValueError, match="pair only trials of one split"):
        paired_optimistic_score({"a": "1"}, bar, 1, 4)


def test_pairing_sees_a_small_lag_that_two_accuracies_cannot():
    """Two soups of one pool agree on most examples: 3 examples behind the bar on the same 100,
    and level everywhere else, stops a trial; its accuracy alone (0.67 against 0.70) does not."""
    bar_bits = ("1" * 70 + "0" * 30) * 4  # the bar: 0.70 on 400 examples, the first chunk 100 of them
    bar = Bar(0.70, {"a": bar_bits})
    first = bar_answers(bar.correct, 1, 4)["a"]
    behind = "0" * 3 + first[3:]  # the bar's first chunk with its first 3 right answers wrong
    part = [ScoreResult({"a": behind.count("1") / 100}, {"a": 100}, 0.1, {"a": behind}, {})]
    assert StopWhenBehind(bar, 4).says_stop(part)
    assert not StopWhenBehind(Bar(0.70), 4).says_stop(part)  # unpaired: within the noise of two accuracies
    level = [ScoreResult({"a": 0.70}, {"a": 100}, 0.1, {"a": first}, {})]
    assert not StopWhenBehind(bar, 4).says_stop(level)  # level with the bar: a fair chance to beat it
    assert upper_score(part[0], 1, 4, None, bar) < 0.70 < upper_score(level[0], 1, 4, None, bar)


def chunk(bits: str) -> ScoreResult:
    return ScoreResult({"a": bits.count("1") / len(bits)}, {"a": len(bits)}, 0.1, {"a": bits}, {})


def test_a_scorer_stops_only_below_the_bar_it_was_given():
    """The bar is the best complete trial when the trial started: none yet, and nothing stops
    (here without its answers: the unpaired rule)."""
    bad = [chunk("0" * 40)]  # 0 of 40 after the first of 4 chunks: optimistic ≈ 0.042
    assert not StopWhenBehind(None, 4).says_stop(bad)
    assert StopWhenBehind(Bar(0.5), 4).says_stop(bad)
    assert not StopWhenBehind(Bar(0.04), 4).says_stop(bad)
    good = [chunk("1" * 30 + "0" * 10)]  # 0.75 so far
    assert not StopWhenBehind(Bar(0.8), 4).says_stop(good)  # within its optimism: scores on
    assert StopWhenBehind(Bar(0.8), 4).says_stop(good + [chunk("0" * 40), chunk("0" * 40)])


def test_a_trial_ahead_of_the_bar_is_never_stopped():
    """The best trial is never pruned: one ahead of the bar on the examples scored so far goes on
    after every chunk, paired or not."""
    bar_bits = "10" * 80  # 0.5 on 160 examples, 40 a chunk
    bar = Bar(0.5, {"a": bar_bits})
    ahead = []
    for i in range(3):
        mine = "1" + bar_answers(bar.correct, 1, 4)["a"][1:]  # one more right answer each chunk
        ahead.append(chunk(mine))
        assert not StopWhenBehind(bar, 4).says_stop(ahead)
        assert not StopWhenBehind(Bar(0.5), 4).says_stop(ahead)


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
