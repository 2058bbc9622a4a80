"""Objectives are found by name in the registry."""

from __future__ import annotations

import pytest

from soup_search.objectives import (
    ENTRY_POINT_GROUP, REGISTRY, Objective, get_objective, objective_class, objective_names, objective_target,
    register_objective,
)
from soup_search.scoring.protocol import ObjectiveSpec
from soup_search.objectives.jsonl import JsonlObjective
from soup_search.objectives.toy import ToyObjective
from soup_search.errors import ObjectiveError, SoupSearchError


def test_get_toy():
    toy = get_objective("toy")
    assert isinstance(toy, ToyObjective) and isinstance(toy, Objective)
    assert toy.name == "toy"


def test_params_are_passed():
    toy = get_objective("toy", seed=2, categories=["add"], n_dev=5)
    assert toy.seed == 2 and toy.categories == ("add",)
    assert len(toy.examples("dev")) == 5


def test_jsonl_class():
    assert objective_class("jsonl") is JsonlObjective


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ObjectiveError) as exc:
        get_objective("nope")
    msg = str(exc.value)
    assert isinstance(exc.value, SoupSearchError) and "\n" not in msg
    assert "'nope'" in msg
    for name in REGISTRY:
        assert name in msg


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ObjectiveError, match=r"unknown parameter 'bogus' of objective 'toy'; valid parameters: seed, ") as exc:
        get_objective("toy", bogus=1)
    assert "\n" not in str(exc.value)


def test_a_missing_required_parameter_is_named():
    with pytest.raises(ObjectiveError, match="objective 'jsonl' needs the parameter 'path'"):
        get_objective("jsonl")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_entry_resolves_to_a_class(name):
    cls = objective_class(name)
    assert isinstance(cls, type) and issubclass(cls, Objective) and cls.__name__ == REGISTRY[name].split(":")[1]


@pytest.mark.parametrize("name", ["toy", "jsonl"])
def test_example_objectives_follow_the_contract(name):
    cls = objective_class(name)
    assert issubclass(cls, Objective) and cls.name == name


def test_leaderboard_is_not_an_objective_and_points_to_scores():
    with pytest.raises(ObjectiveError, match=r"'leaderboard' is not an objective: .*'scores:' section"):
        objective_class("leaderboard")


class Doubled(ToyObjective):
    name = "doubled"


def test_register_a_class_and_build_it_from_its_target_elsewhere():
    register_objective("doubled", Doubled)
    try:
        assert isinstance(get_objective("doubled", seed=1), Doubled)
        target = objective_target("doubled")
        assert target == f"{__name__}:Doubled"
        # another process knows no register_objective call: the spec carries the class path
        spec = ObjectiveSpec.of("doubled", {"seed": 1})
        assert spec.target == target
        REGISTRY.pop("doubled")
        assert isinstance(spec.build(), Doubled)
    finally:
        REGISTRY.pop("doubled", None)


def test_register_refuses_a_taken_name_and_a_non_objective():
    with pytest.raises(ObjectiveError, match="already registered"):
        register_objective("toy", Doubled)
    register_objective("notone", "collections:OrderedDict")
    try:
        with pytest.raises(ObjectiveError, match="not an Objective subclass"):
            objective_class("notone")
    finally:
        REGISTRY.pop("notone")


def test_entry_point_objective_is_found_without_a_call(tmp_path, monkeypatch):
    """A package that declares an entry point in the group soup_search.objectives (a real dist-info)."""
    pkg = tmp_path / "my_bench.py"
    pkg.write_text("from soup_search.objectives.toy import ToyObjective\n\n"
                   "class MyBench(ToyObjective):\n    name = 'mybench'\n")
    info = tmp_path / "my_bench-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-bench\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nmybench = my_bench:MyBench\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert "mybench" in objective_names()
        assert type(get_objective("mybench", seed=0)).__name__ == "MyBench"
    finally:
        REGISTRY.pop("mybench", None)
