"""The spaces of given models: interpolation (λ, or λ_attn and λ_mlp) and task vectors (one α per
vector): parameter names, params → soup and recipe, baselines, grids and ranges."""

from __future__ import annotations

import optuna
import pytest

from soup_search.search.baselines import grid_points, soup_key, starting_points
from soup_search.search.interpolation_space import InterpolationSpace
from soup_search.search.task_vector_space import DEFAULT_ALPHA_RANGE, TaskVectorSpace
from soup_search.search.trial import trial_recipe


def _models(recipe) -> dict[str, float]:
    return {m.model: m.parameters.get("weight") for m in recipe.models}


# ---- interpolation -----------------------------------------------------------------------------

def test_interpolation_searches_one_lambda_in_0_1_named_lambda():
    space = InterpolationSpace("A", "B")
    dists = space.distributions()
    assert list(dists) == ["lambda"]
    assert (dists["lambda"].low, dists["lambda"].high) == (0.0, 1.0)


def test_per_module_interpolation_searches_lambda_attn_and_lambda_mlp():
    space = InterpolationSpace("A", "B", per_module=True)
    assert list(space.distributions()) == ["lambda_attn", "lambda_mlp"]


def test_interpolation_soup_is_lambda_a_plus_one_minus_lambda_b():
    space = InterpolationSpace("A", "B")
    assert space.soup({"lambda": 0.3}) == {"all": {"A": 0.3, "B": 0.7}}
    recipe = trial_recipe(space, {"lambda": 0.3})
    assert recipe.merge_method == "interpolate" and recipe.base_model is None
    assert [m.model for m in recipe.models] == ["A", "B"]  # A first: lambda is A's share
    assert recipe.parameters == {"lambda": 0.3}


def test_per_module_recipe_gives_attn_and_mlp_their_lambda_and_the_rest_the_mean():
    space = InterpolationSpace("A", "B", per_module=True)
    params = {"lambda_attn": 0.2, "lambda_mlp": 0.6}
    assert space.soup(params) == {"attn": {"A": 0.2, "B": 0.8}, "mlp": {"A": 0.6, "B": 0.4}}
    assert trial_recipe(space, params).parameters["lambda"] == [
        {"filter": "self_attn", "value": 0.2}, {"filter": "mlp", "value": 0.6}, {"value": pytest.approx(0.4)}]


def test_interpolation_baselines_are_b_alone_the_midpoint_and_a_alone():
    space = InterpolationSpace("A", "B")
    names, points = zip(*space.baselines())
    assert points == ({"lambda": 0.0}, {"lambda": 0.5}, {"lambda": 1.0})
    assert names == ("lambda 0 (B)", "lambda 0.5 (midpoint)", "lambda 1 (A)")
    assert starting_points(space) == list(points)
    per_module = InterpolationSpace("A", "B", per_module=True)
    assert [p for _, p in per_module.baselines()][2] == {"lambda_attn": 1.0, "lambda_mlp": 1.0}


def test_interpolation_grid_is_every_tenth_and_per_module_every_pair():
    assert [p["lambda"] for p in grid_points(InterpolationSpace("A", "B"))] == [i / 10 for i in range(11)]
    grid = grid_points(InterpolationSpace("A", "B", per_module=True))
    assert len(grid) == 121 and {"lambda_attn": 0.3, "lambda_mlp": 0.8} in grid
    # the baselines come first, then the grid points they do not hold already
    points = starting_points(InterpolationSpace("A", "B"), grid_points(InterpolationSpace("A", "B")))
    assert len(points) == 11 and points[:3] == [{"lambda": 0.0}, {"lambda": 0.5}, {"lambda": 1.0}]


def test_optuna_samples_lambda_in_range_under_its_name():
    space = InterpolationSpace("A", "B", per_module=True)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        space.suggest(trial)
        assert set(trial.params) == {"lambda_attn", "lambda_mlp"}
        assert all(0 <= v <= 1 for v in trial.params.values())
        study.tell(trial, 0.0)


# ---- task vectors ------------------------------------------------------------------------------

def tv(*vectors, alpha_range=None):
    return TaskVectorSpace.of("T", vectors or [("A", "B")], alpha_range)


def test_task_vectors_search_one_alpha_per_vector_named_by_plus_and_minus():
    space = tv(("A", "B"), ("C", "B"))
    dists = space.distributions()
    assert list(dists) == ["alpha.A-B", "alpha.C-B"]
    assert all((d.low, d.high) == DEFAULT_ALPHA_RANGE == (-1.0, 2.0) for d in dists.values())
    assert {(d.low, d.high) for d in tv(alpha_range=(-0.5, 1.5)).distributions().values()} == {(-0.5, 1.5)}


def test_task_vector_soup_is_target_plus_alpha_times_each_difference():
    space = tv(("A", "B"), ("C", "B"))
    params = {"alpha.A-B": 0.5, "alpha.C-B": -0.25}
    # θ_T + 0.5(θ_A − θ_B) − 0.25(θ_C − θ_B): B's coefficients add up, the whole sums to 1
    assert space.soup(params) == {"all": {"T": 1.0, "A": 0.5, "B": -0.25, "C": -0.25}}
    recipe = trial_recipe(space, params)
    assert recipe.merge_method == "task_arithmetic" and recipe.base_model == "T"
    assert _models(recipe) == {"A": 0.5, "B": -0.25, "C": -0.25}
    assert recipe.parameters == {}  # normalize false, lambda 1: mergekit's defaults, exactly the sum


def test_a_vector_against_the_target_itself_keeps_the_target_out_of_the_models():
    space = TaskVectorSpace.of("T", [("A", "T")])
    assert space.soup({"alpha.A-T": 0.4}) == {"all": {"T": 0.6, "A": 0.4}}
    assert _models(trial_recipe(space, {"alpha.A-T": 0.4})) == {"A": 0.4}


def test_all_alpha_zero_is_the_target_as_a_recipe():
    recipe = trial_recipe(tv(), {"alpha.A-B": 0.0})
    assert recipe.base_model == "T" and _models(recipe) == {"A": 0.0, "B": 0.0}


def test_task_vector_baselines_are_the_target_each_vector_alone_and_all_at_one():
    names, points = zip(*tv(("A", "B"), ("C", "B")).baselines())
    assert points == ({"alpha.A-B": 0.0, "alpha.C-B": 0.0}, {"alpha.A-B": 1.0, "alpha.C-B": 0.0},
                      {"alpha.A-B": 0.0, "alpha.C-B": 1.0}, {"alpha.A-B": 1.0, "alpha.C-B": 1.0})
    assert names == ("alpha 0 (T)", "alpha 1 on A-B only", "alpha 1 on C-B only", "alpha 1 on every vector")
    # one vector: alone at 1 and all at 1 are one point
    assert tv().baselines() == [("alpha 0 (T)", {"alpha.A-B": 0.0}), ("alpha 1", {"alpha.A-B": 1.0})]


def test_negative_alphas_are_different_soups():
    space = tv()
    assert soup_key(space, {"alpha.A-B": -1.0}) != soup_key(space, {"alpha.A-B": 1.0})
    assert len(starting_points(space, [{"alpha.A-B": -1.0}, {"alpha.A-B": 0.0}])) == 3


def test_task_vector_grid_steps_a_quarter_over_the_range():
    values = [p["alpha.A-B"] for p in grid_points(tv())]
    assert values == [-1 + i / 4 for i in range(13)]
    assert len(grid_points(tv(("A", "B"), ("C", "B")))) == 13 ** 2
    assert [p["alpha.A-B"] for p in grid_points(tv(alpha_range=(-0.1, 1)))][-2:] == [0.9, 1.0]
