"""Objectives are found by name in the registry."""

from __future__ import annotations

import importlib

import pytest

from soup_search.objectives import REGISTRY, Objective, get_objective, objective_class
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


def test_unknown_parameter_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="bogus"):
        get_objective("toy", bogus=1)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_entry_resolves_to_a_class(name):
    module = REGISTRY[name].split(":")[0]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            pytest.skip(f"{module} is not written yet")
        raise
    cls = objective_class(name)
    assert isinstance(cls, type) and cls.__name__ == REGISTRY[name].split(":")[1]


@pytest.mark.parametrize("name", ["toy", "jsonl"])
def test_example_objectives_follow_the_contract(name):
    cls = objective_class(name)
    assert issubclass(cls, Objective) and cls.name == name
