"""The study around Ray Tune: reconciling with the trial log, and the sampler factory (no Ray)."""

from __future__ import annotations

import optuna
import pytest

from soup_search.errors import ConfigError
from soup_search.search.samplers import SAMPLERS, make_sampler
from soup_search.search.space import SearchSpace
from soup_search.search.storage import open_storage
from soup_search.search.tuner import completed_trials, prepare_study

SPACE = SearchSpace.from_analysis({"x": "a", "y": "b"}, {"x": ["a", "c"], "y": ["b"]})


def params(u, expert="a"):
    return {"expert.x": expert, "stick.x": u}


def study_with(storage, name, rows):
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for p, value in rows:
        study.add_trial(optuna.trial.create_trial(params=p, value=value, distributions=SPACE.distributions()))
    return study


def test_new_study_runs_every_point(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'o.sqlite'}")
    points = [params(0.5), params(1.0)]
    assert prepare_study(storage, "s", points) == (0, points)


def test_completed_points_are_not_run_again_and_running_trials_fail(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'o.sqlite'}")
    study = study_with(storage, "s", [(params(0.5), 0.5)])
    study.ask()  # a trial left RUNNING by a killed driver
    done, todo = prepare_study(storage, "s", [params(0.5), params(1.0)],
                               logged=[{"params": params(0.5), "value": 0.5}],
                               distributions=SPACE.distributions())
    assert done == 1 and todo == [params(1.0)]
    states = [t.state for t in optuna.load_study(study_name="s", storage=storage).get_trials()]
    assert states.count(optuna.trial.TrialState.FAIL) == 1


def test_a_logged_trial_optuna_never_heard_of_is_added(tmp_path):
    """A driver killed between a trial's log row and Optuna's tell: the log wins."""
    storage = open_storage(f"sqlite:///{tmp_path / 'o.sqlite'}")
    study_with(storage, "s", [(params(0.5), 0.5)])
    logged = [{"params": params(0.5), "value": 0.5}, {"params": params(0.3, "c"), "value": 0.7}]
    done, todo = prepare_study(storage, "s", [params(0.3, "c")], logged, SPACE.distributions())
    assert done == 2 and todo == []
    values = sorted(t.value for t in completed_trials(storage, "s"))
    assert values == [0.5, 0.7]
    # a second reconciliation adds nothing
    assert prepare_study(storage, "s", [], logged, SPACE.distributions())[0] == 2


def test_log_without_a_study_creates_it(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'o.sqlite'}")
    done, _ = prepare_study(storage, "fresh", [], [{"params": params(1.0), "value": 0.4}],
                            SPACE.distributions())
    assert done == 1 and completed_trials(storage, "fresh")[0].params == params(1.0)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_factory_builds_a_seeded_optuna_sampler(name):
    sampler = make_sampler(name, seed=3)
    assert isinstance(sampler, optuna.samplers.BaseSampler)
    if name in ("tpe", "random"):
        a = optuna.create_study(sampler=make_sampler(name, seed=3))
        b = optuna.create_study(sampler=make_sampler(name, seed=3))
        assert [a.ask().suggest_float("u", 0, 1) for _ in range(3)] == [b.ask().suggest_float("u", 0, 1) for _ in range(3)]


def test_sampler_names_match_the_config():
    from soup_search.config import SAMPLERS as CONFIG_SAMPLERS

    assert set(SAMPLERS) == set(CONFIG_SAMPLERS)


def test_unknown_sampler_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown sampler 'bohb'"):
        make_sampler("bohb")


def test_a_logged_pruned_trial_is_added_as_pruned_and_counts_in_the_budget(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'o.sqlite'}")
    logged = [{"params": params(0.5), "value": 0.6, "timings": {"pruned": False}},
              {"params": params(0.1), "value": 0.2, "timings": {"pruned": True, "chunks_scored": 1}}]
    done, todo = prepare_study(storage, "s", [params(0.5), params(0.1), params(1.0)], logged, SPACE.distributions())
    assert done == 2 and todo == [params(1.0)]
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert trials[1].intermediate_values == {1: 0.2}
    assert [t.value for t in completed_trials(storage, "s")] == [0.6]
