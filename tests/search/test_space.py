"""The search space: simplex weights, expert choice, inverse map, grid and samplers."""

from __future__ import annotations

import math

import optuna
import pytest

from soup_search.errors import ConfigError
from soup_search.search.grid import simplex_grid
from soup_search.search.samplers import SAMPLERS, make_sampler
from soup_search.search.space import SearchSpace

EXPERTS = {"add": "e1", "sort": "e2", "copy": "e3"}
ALTERNATES = {"add": ["e1", "e4"], "sort": ["e2"], "copy": ["e3", "e1"]}


def space(**kw):
    return SearchSpace.from_analysis(EXPERTS, ALTERNATES, **kw)


def test_weights_sum_to_one_with_floor():
    s = space(min_weight=0.1)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        s.suggest(trial)
        w = s.group_weights(trial.params)["all"]
        assert math.isclose(sum(w.values()), 1.0)
        assert min(w.values()) >= 0.1 - 1e-12
        study.tell(trial, 0.0)


def test_expert_choice_only_where_there_are_alternates():
    s = space()
    assert set(s.distributions()) == {"expert.add", "w.add", "w.sort", "expert.copy", "w.copy"}
    assert s.alternates["add"] == ("e1", "e4")  # the expert first


def test_inverse_map_round_trips():
    s = space(min_weight=0.05)
    for w in ([0.2, 0.3, 0.5], [1 / 3] * 3, [0.9, 0.05, 0.05]):
        got = s.group_weights(s.params_for(w))["all"]
        assert [round(got[g], 9) for g in s.groups] == [round(x, 9) for x in w]


def test_same_model_for_two_groups_adds_weights():
    s = space()
    params = s.params_for([0.2, 0.3, 0.5], experts={"copy": "e1"})
    assert s.soup(params) == {"all": {"e1": pytest.approx(0.7), "e2": pytest.approx(0.3)}}


def test_expert_alone_with_zero_floor():
    s = space(min_weight=0.0)
    assert s.soup(s.params_for([0.0, 1.0, 0.0]))["all"] == {"e1": 0.0, "e2": 1.0, "e3": 0.0}


def test_per_module_weights():
    s = space(per_module=True)
    assert "w_attn.add" in s.distributions() and "w_mlp.add" in s.distributions()
    params = {**s.params_for([0.2, 0.3, 0.5]), "w_mlp.add": 1.0, "w_mlp.sort": 0.0, "w_mlp.copy": 0.0}
    soup = s.soup(params)
    assert soup["attn"] == pytest.approx({"e1": 0.2, "e2": 0.3, "e3": 0.5})
    assert soup["mlp"] == pytest.approx({"e1": 1.0, "e2": 0.0, "e3": 0.0})


def test_bad_spaces_list_every_problem():
    with pytest.raises(ConfigError) as err:
        SearchSpace(("a", "b", "c"), {"a": ("x",), "b": (), "c": ()}, min_weight=0.4)
    assert len(err.value.problems) == 3
    with pytest.raises(ConfigError, match="no group"):
        SearchSpace((), {})


@pytest.mark.parametrize("k,count", [(1, 1), (2, 9), (3, 37), (4, 85)])
def test_paper_grid(k, count):
    pts = simplex_grid(k)
    assert len(pts) == count
    for p in pts:
        assert math.isclose(sum(p), 1.0)
    if k > 1:
        assert all(0.1 - 1e-9 <= w <= 0.9 + 1e-9 for p in pts[:-1] for w in p)
    assert pts[-1] == tuple([round(1 / k, 10)] * k) or tuple([round(1 / k, 10)] * k) in pts


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_drives_the_space(name):
    s = space()
    study = optuna.create_study(direction="maximize", sampler=make_sampler(name, seed=1, n_startup=2))
    study.optimize(lambda t: (s.suggest(t), s.group_weights(t.params)["all"]["add"])[1], n_trials=6)
    assert len(study.trials) == 6 and study.best_value > 0


def test_unknown_sampler():
    with pytest.raises(ConfigError, match="unknown sampler 'sa'"):
        make_sampler("sa")
