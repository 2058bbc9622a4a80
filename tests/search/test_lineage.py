"""Carry-over and seeding of a child search, without Ray: re-encoding soups in a child space,
the reasons a parent trial is skipped, newcomers in the seeds, and carried rows in the study."""

from __future__ import annotations

import random

import optuna
import pytest

from soup_search.search.lineage import (
    CarryOver, ParentRun, ParentTrial, carry_over, encode, newcomers, seed_point, seed_points,
)
from soup_search.search.space import SearchSpace
from soup_search.search.storage import open_storage
from soup_search.search.tuner import completed_trials, prepare_study

#: the parent: two groups, experts a and b, each with an alternate
PARENT = SearchSpace.from_analysis({"g1": "a", "g2": "b"}, {"g1": ["a", "c"], "g2": ["b", "a"]})
#: the child: the parent's groups and alternates, and a third group whose expert n is a newcomer
CHILD = SearchSpace.from_analysis({"g1": "a", "g2": "b", "g3": "n"},
                                  {"g1": ["a", "c"], "g2": ["b", "a"], "g3": ["n", "c"]})
FPS = {"a": "fa", "b": "fb", "c": "fc"}
REVISION = "rev1"


def random_params(space: SearchSpace, rng: random.Random) -> dict:
    out = {}
    for name, dist in space.distributions().items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            out[name] = rng.choice(dist.choices)
        else:
            out[name] = rng.random()
    return out


def assert_same_soup(a, b):
    assert set(a) == set(b)
    for module in a:
        models = set(a[module]) | set(b[module])
        assert {m: a[module].get(m, 0.0) for m in models} == pytest.approx({m: b[module].get(m, 0.0) for m in models},
                                                                            abs=1e-6)


def parent_run(trials, space=PARENT, fps=FPS, revision=REVISION) -> ParentRun:
    return ParentRun(folder="/runs/parent", study="parent-study", space=space, candidates=tuple(fps),
                     candidate_fps=fps, objective_revision=revision, trials=tuple(trials))


def trial(n, params, dev, space=PARENT, pruned=False) -> ParentTrial:
    return ParentTrial(number=n, params=params, weights=space.soup(params), dev_mean=dev,
                       dev_per_category={"x": dev}, pruned=pruned)


@pytest.mark.parametrize("weights", ["stick", "normalize"])
def test_random_parent_soups_reencode_in_a_wider_child_space(weights):
    rng = random.Random(0)
    parent = SearchSpace.from_analysis({"g1": "a", "g2": "b"}, {"g1": ["a", "c"], "g2": ["b", "a"]}, weights=weights)
    for _ in range(200):
        soup = parent.soup(random_params(parent, rng))
        params = encode(CHILD, soup)
        assert params is not None, soup
        assert set(params) == set(CHILD.distributions())
        assert_same_soup(CHILD.soup(params), soup)


def test_per_module_soups_reencode_with_separate_numbers_per_module():
    rng = random.Random(1)
    parent = SearchSpace(PARENT.groups, PARENT.alternates, per_module=True)
    child = SearchSpace(CHILD.groups, CHILD.alternates, per_module=True)
    for _ in range(100):
        soup = parent.soup(random_params(parent, rng))
        params = encode(child, soup)
        assert params is not None
        assert_same_soup(child.soup(params), soup)
    soup = {"attn": {"a": 0.3, "b": 0.7}, "mlp": {"a": 0.9, "b": 0.1}}
    params = encode(child, soup)
    assert params["stick_attn.g1"] != params["stick_mlp.g1"]
    # a soup of one weight per model fits a per-module space; a per-module soup fits a plain one only when
    # attention and MLP agree
    assert_same_soup(child.soup(encode(child, {"all": {"a": 0.4, "b": 0.6}})),
                     {"attn": {"a": 0.4, "b": 0.6}, "mlp": {"a": 0.4, "b": 0.6}})
    assert encode(CHILD, soup) is None
    assert_same_soup(CHILD.soup(encode(CHILD, {"attn": {"a": 0.4, "b": 0.6}, "mlp": {"a": 0.4, "b": 0.6}})),
                     {"all": {"a": 0.4, "b": 0.6}})


def test_a_model_chosen_by_two_groups_splits_its_weight():
    params = encode(CHILD, {"all": {"a": 1.0}})
    assert_same_soup(CHILD.soup(params), {"all": {"a": 1.0}})


def test_inexpressible_soups_are_none():
    assert encode(CHILD, {"all": {"a": 0.5, "z": 0.5}}) is None  # z is no group's alternate
    assert encode(CHILD, {"all": {"a": 0.3, "b": 0.3, "c": 0.2, "n": 0.2}}) is None  # four models, three groups
    floored = SearchSpace(CHILD.groups, CHILD.alternates, min_weight=0.1)
    assert encode(floored, {"all": {"a": 0.5, "b": 0.5}}) is None  # g3 would need weight 0, below the floor
    assert encode(floored, {"all": {"a": 0.4, "b": 0.3, "n": 0.3}}) is not None


def test_complete_trials_carry_over_and_the_others_are_skipped_with_reasons():
    fine = [trial(0, PARENT.params_for([0.3, 0.7]), 0.5), trial(1, PARENT.params_for([0.5, 0.5], {"g1": "c"}), 0.51),
            trial(2, PARENT.params_for([0.6, 0.4], {"g1": "c", "g2": "a"}), 0.52),
            trial(3, PARENT.params_for([0.2, 0.8], {"g1": "a", "g2": "a"}), 0.53)]  # a alone
    gone_space = SearchSpace.from_analysis({"g1": "a", "g2": "gone"}, {"g1": ["a"], "g2": ["gone"]})
    gone = trial(4, gone_space.params_for([0.5, 0.5]), 0.9, space=gone_space)
    pruned = trial(5, PARENT.params_for([0.5, 0.5]), 0.2, pruned=True)
    repeat = trial(6, dict(fine[0].params), 0.5)
    carried = carry_over(parent_run([*fine, gone, pruned, repeat], fps={**FPS, "gone": "fg"}), CHILD,
                         {**FPS, "n": "fn"}, REVISION)
    assert [t.parent_trial for t in carried.trials] == [0, 1, 2, 3]
    assert [t.dev_mean for t in carried.trials] == [0.5, 0.51, 0.52, 0.53]
    for t, parent_trial in zip(carried.trials, fine):
        assert_same_soup(CHILD.soup(t.params), parent_trial.weights)
    assert carried.skipped == 3
    assert carried.notes == ("1 parent trial was pruned (no full dev score)", "1 parent trial uses a candidate that is gone",
                             "1 parent trial repeats a soup already carried")


def test_a_changed_fingerprint_skips_the_trials_that_use_that_candidate():
    only_a = trial(0, PARENT.params_for([1.0, 0.0], {"g1": "a", "g2": "a"}), 0.6)
    with_b = trial(1, PARENT.params_for([0.5, 0.5]), 0.7)
    carried = carry_over(parent_run([only_a, with_b]), CHILD, {**FPS, "b": "fb-new"}, REVISION)
    assert [t.parent_trial for t in carried.trials] == [0]
    assert carried.skipped == 1 and carried.notes == ("1 parent trial uses a candidate whose checkpoint changed",)


def test_nothing_carries_across_objective_revisions_or_without_fingerprints():
    trials = [trial(0, PARENT.params_for([0.5, 0.5]), 0.7)]
    other = carry_over(parent_run(trials), CHILD, FPS, "rev2")
    assert other.trials == () and other.skipped == 1 and "revision rev1, this run rev2" in other.notes[0]
    blind = carry_over(ParentRun("/p", "s", PARENT, ("a", "b", "c"), None, REVISION, tuple(trials)), CHILD, FPS,
                       REVISION)
    assert blind.trials == () and "no candidate fingerprints" in blind.notes[0]


def test_an_inexpressible_parent_trial_is_skipped():
    narrow = SearchSpace.from_analysis({"g1": "a", "g2": "b"}, {"g1": ["a"], "g2": ["b"]})
    t = trial(0, PARENT.params_for([0.5, 0.5], {"g1": "c", "g2": "b"}), 0.7)
    assert carry_over(parent_run([t]), narrow, FPS, REVISION) == CarryOver(
        skipped=1, notes=("1 parent trial cannot be expressed in this run's search space",))


def test_newcomers_are_new_names_and_changed_checkpoints():
    assert newcomers(parent_run([]), {**FPS, "n": "fn", "b": "fb2"}) == ["b", "n"]


def test_seeding_puts_the_newcomer_in_for_the_expert_it_beats():
    # the child's analysis: n now beats a on g1; g3 is new
    child = SearchSpace.from_analysis({"g1": "n", "g2": "b", "g3": "c"},
                                      {"g1": ["n", "a"], "g2": ["b", "a"], "g3": ["c"]})
    best = PARENT.params_for([0.7, 0.3], {"g1": "a", "g2": "b"})
    point = seed_point(PARENT, child, best, {"n"})
    assert_same_soup(child.soup(point), {"all": {"n": 0.7, "b": 0.3}})
    # without a newcomer the parent's own expert choice stays (the child's alternates allow it)
    point = seed_point(PARENT, child, PARENT.params_for([0.7, 0.3], {"g1": "a", "g2": "a"}), set())
    assert_same_soup(child.soup(point), {"all": {"a": 1.0}})


def test_seed_points_take_the_best_complete_trials_once_and_skip_carried_soups():
    child = SearchSpace.from_analysis({"g1": "n", "g2": "b"}, {"g1": ["n", "a"], "g2": ["b", "a"]})
    trials = [trial(0, PARENT.params_for([0.7, 0.3]), 0.8),
              trial(1, PARENT.params_for([0.7, 0.3], {"g1": "c", "g2": "b"}), 0.9),  # also n 0.7 + b 0.3 in the child
              trial(2, PARENT.params_for([0.2, 0.8]), 0.95, pruned=True),  # pruned: never a seed
              trial(3, PARENT.params_for([0.4, 0.6]), 0.7),
              trial(4, PARENT.params_for([0.1, 0.9]), 0.6)]
    parent = parent_run(trials)
    fps = {**FPS, "n": "fn"}
    points = seed_points(parent, child, fps, top_k=3)
    assert [child.soup(p)["all"] for p in points] == [pytest.approx({"n": 0.7, "b": 0.3}),
                                                     pytest.approx({"n": 0.4, "b": 0.6})]
    assert seed_points(parent, child, fps, top_k=0) == []
    known = [child.params_for([0.4, 0.6])]
    assert len(seed_points(parent, child, fps, top_k=3, known=known)) == 1


DISTS = CHILD.distributions()


def test_carried_rows_enter_the_study_with_their_origin_and_outside_the_budget(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'o.sqlite'}")
    carried = CHILD.params_for([0.5, 0.5, 0.0])
    fresh = CHILD.params_for([0.2, 0.2, 0.6])
    logged = [{"params": carried, "value": 0.8, "timings": {"carried_from": "parent-study", "parent_trial": 7}},
              {"params": fresh, "value": 0.6, "timings": {"pruned": False}}]
    uniform = CHILD.params_for([1 / 3] * 3)
    done, todo = prepare_study(storage, "child", [carried, uniform], logged, DISTS)
    assert done == 1 and todo == [uniform]  # the carried point is not run again, nor counted
    trials = completed_trials(storage, "child")
    assert [t.user_attrs for t in trials] == [{"carried_from": "parent-study", "parent_trial": 7}, {}]
    assert [t.value for t in trials] == [0.8, 0.6]
    # a resumed run reconciles the same log: nothing added twice
    assert prepare_study(storage, "child", [], logged, DISTS)[0] == 1
    assert len(completed_trials(storage, "child")) == 2
