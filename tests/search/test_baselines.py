"""The points every search evaluates first."""

from __future__ import annotations

import pytest

from soup_search.search.baselines import baseline_points, soup_key
from soup_search.search.grid import simplex_grid
from soup_search.search.space import SearchSpace


def space(experts, alternates=None, **kw):
    return SearchSpace.from_analysis(experts, alternates or {g: [e] for g, e in experts.items()}, **kw)


def test_uniform_first_then_each_expert_alone():
    s = space({"add": "a", "sort": "b", "copy": "c"})
    points = baseline_points(s)
    soups = [s.soup(p)["all"] for p in points]
    assert soups[0] == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert soups[1:] == [{"a": 1.0, "b": 0.0, "c": 0.0}, {"a": 0.0, "b": 1.0, "c": 0.0},
                         {"a": 0.0, "b": 0.0, "c": 1.0}]


def test_an_expert_of_two_groups_is_enqueued_once():
    s = space({"add": "a", "sub": "a", "sort": "b"})
    soups = [s.soup(p)["all"] for p in baseline_points(s)]
    # uniform, "a" alone (from add; sub gives the same soup), "b" alone
    assert len(soups) == 3
    assert soups[0] == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert {k for k, v in soups[1].items() if v > 0} == {"a"} and {k for k, v in soups[2].items() if v > 0} == {"b"}


def test_grid_points_follow_and_duplicates_of_baselines_are_dropped():
    s = space({"x": "a", "y": "b"})
    points = baseline_points(s, simplex_grid(2))
    keys = [soup_key(s, p) for p in points]
    assert len(keys) == len(set(keys))
    # 3 baselines (uniform, a, b) + 9 grid points, of which 0.5/0.5 is the uniform soup
    assert len(points) == 3 + 9 - 1


def test_single_group_has_just_the_expert():
    s = space({"x": "a"})
    assert [s.soup(p)["all"] for p in baseline_points(s)] == [{"a": 1.0}]
