"""The search space: simplex weights, expert choice, inverse map, grid and samplers."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from soup_search.errors import ConfigError
from soup_search.search.grid import simplex_grid
from soup_search.search.samplers import SAMPLERS, make_sampler
from soup_search.search.space import WEIGHT_MAPS, SearchSpace

EXPERTS = {"add": "e1", "sort": "e2", "copy": "e3"}
ALTERNATES = {"add": ["e1", "e4"], "sort": ["e2"], "copy": ["e3", "e1"]}


def space(**kw):
    return SearchSpace.from_analysis(EXPERTS, ALTERNATES, **kw)


@pytest.mark.parametrize("weights", WEIGHT_MAPS)
def test_weights_sum_to_one_with_floor(weights):
    s = space(min_weight=0.1, weights=weights)
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
    assert set(s.distributions()) == {"expert.add", "stick.add", "stick.sort", "expert.copy"}
    assert s.alternates["add"] == ("e1", "e4")  # the expert first


def test_normalize_map_keeps_one_number_per_group():
    s = space(weights="normalize")
    assert set(s.distributions()) == {"expert.add", "w.add", "w.sort", "expert.copy", "w.copy"}
    params = {"w.add": 1.0, "w.sort": 0.5, "w.copy": 0.5}
    assert s.group_weights(params)["all"] == pytest.approx({"add": 0.5, "sort": 0.25, "copy": 0.25})


@pytest.mark.parametrize("weights", WEIGHT_MAPS)
@pytest.mark.parametrize("min_weight", [0.0, 0.05])
def test_inverse_map_round_trips(weights, min_weight):
    s = space(min_weight=min_weight, weights=weights)
    for w in ([0.2, 0.3, 0.5], [1 / 3] * 3, [0.9, 0.05, 0.05]):
        got = s.group_weights(s.params_for(w))["all"]
        assert [got[g] for g in s.groups] == pytest.approx(w, abs=1e-12)


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("min_weight", [0.0, 0.04])
def test_every_point_of_the_simplex_is_reachable(k, min_weight):
    """Random points, vertices, edges and faces: params_for finds numbers in [0, 1] that give them."""
    groups = [f"g{i}" for i in range(k)]
    s = SearchSpace.from_analysis({g: f"m{i}" for i, g in enumerate(groups)}, {}, min_weight=min_weight)
    assert len(s.distributions()) == k - 1
    rng = np.random.default_rng(k)
    shares = list(rng.dirichlet(np.ones(k), size=100)) + list(np.eye(k))
    shares += [np.where(np.arange(k) == i, 0.0, p) / (1 - p[i]) for i, p in enumerate(shares[:k])]  # on a face
    for share in shares:
        target = [min_weight + (1 - k * min_weight) * x for x in share]
        params = s.params_for(target)
        assert all(0.0 <= params[name] <= 1.0 for name in s.weight_params())
        got = s.group_weights(params)["all"]
        assert [got[g] for g in groups] == pytest.approx(target, abs=1e-12)
        assert min(got.values()) >= min_weight - 1e-12


@pytest.mark.parametrize("min_weight", [0.0, 0.1])
def test_baselines_map_exactly(min_weight):
    s = space(min_weight=min_weight)
    k = len(s.groups)
    uniform = s.group_weights(s.params_for([1 / k] * k))["all"]
    assert all(abs(w - 1 / k) < 1e-15 for w in uniform.values())
    if min_weight == 0.0:
        for i, g in enumerate(s.groups):
            alone = s.group_weights(s.params_for([1.0 if j == i else 0.0 for j in range(k)]))["all"]
            assert alone == {h: (1.0 if h == g else 0.0) for h in s.groups}  # exactly


def test_same_model_for_two_groups_adds_weights():
    s = space()
    params = s.params_for([0.2, 0.3, 0.5], experts={"copy": "e1"})
    assert s.soup(params) == {"all": {"e1": pytest.approx(0.7), "e2": pytest.approx(0.3)}}


def test_expert_alone_with_zero_floor():
    s = space(min_weight=0.0)
    assert s.soup(s.params_for([0.0, 1.0, 0.0]))["all"] == {"e1": 0.0, "e2": 1.0, "e3": 0.0}


def test_per_module_weights():
    s = space(per_module=True)
    assert {"stick_attn.add", "stick_attn.sort", "stick_mlp.add", "stick_mlp.sort"} <= set(s.distributions())
    params = {**s.params_for([0.2, 0.3, 0.5]), "stick_mlp.add": 1.0, "stick_mlp.sort": 0.0}
    soup = s.soup(params)
    assert soup["attn"] == pytest.approx({"e1": 0.2, "e2": 0.3, "e3": 0.5})
    assert soup["mlp"] == pytest.approx({"e1": 1.0, "e2": 0.0, "e3": 0.0})


def test_one_group_needs_no_weight_number():
    s = SearchSpace.from_analysis({"add": "e1"}, {})
    assert s.distributions() == {} and s.soup(s.params_for([1.0])) == {"all": {"e1": 1.0}}


def test_bad_spaces_list_every_problem():
    with pytest.raises(ConfigError) as err:
        SearchSpace(("a", "b", "c"), {"a": ("x",), "b": (), "c": ()}, min_weight=0.4)
    assert len(err.value.problems) == 3
    with pytest.raises(ConfigError, match="no group"):
        SearchSpace((), {})
    with pytest.raises(ConfigError, match="search.weights 'softmax' is unknown"):
        SearchSpace(("a",), {"a": ("x",)}, weights="softmax")


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
