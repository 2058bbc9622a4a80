"""The trial's pure parts: the objective value without the objective, soup recipes, weight fingerprints."""

from __future__ import annotations

import pytest

from soup_search.scoring.protocol import ObjectiveSpec
from soup_search.search.trial import objective_value, soup_recipe, weights_fingerprint


def test_objective_value_needs_no_objective_data(tmp_path):
    """A trial process aggregates from category weights alone: the data file is never opened."""
    spec = ObjectiveSpec("jsonl", {"path": str(tmp_path / "does-not-exist.jsonl"),
                                   "category_weights": {"a": 3.0}})
    assert objective_value(spec, {"a": 1.0, "b": 0.0}) == pytest.approx(0.75)
    assert objective_value(ObjectiveSpec("toy", {}), {"a": 1.0, "b": 0.0}) == pytest.approx(0.5)


def test_soup_recipe_drops_zero_weights_and_splits_modules():
    assert [m.model for m in soup_recipe({"all": {"a": 0.5, "b": 0.0, "c": 0.5}}).models] == ["a", "c"]
    per_module = soup_recipe({"attn": {"a": 1.0, "b": 0.0}, "mlp": {"a": 0.25, "b": 0.75}})
    weights = {m.model: m.parameters["weight"] for m in per_module.models}
    assert weights["b"][0]["value"] == 0.0 and weights["b"][1]["value"] == 0.75 and weights["b"][2]["value"] == 0.375


def test_weights_fingerprint_follows_checkpoint_content():
    recipe = soup_recipe({"all": {"a": 0.5, "b": 0.5}})
    fp = weights_fingerprint(recipe, {"a": "1", "b": "2", "c": "3"})
    assert fp == weights_fingerprint(recipe, {"a": "1", "b": "2", "c": "other"})  # c is not used
    assert fp != weights_fingerprint(recipe, {"a": "1", "b": "changed"})


def test_one_top_k_default_everywhere():
    import inspect

    from soup_search.analysis.soce import analyze
    from soup_search.cli.analyze import analyze_command
    from soup_search.config import DEFAULT_TOP_K, AnalysisConfig

    assert AnalysisConfig().top_k == DEFAULT_TOP_K
    assert inspect.signature(analyze).parameters["top_k"].default == DEFAULT_TOP_K
    assert inspect.signature(analyze_command).parameters["top_k"].default == DEFAULT_TOP_K


def test_held_out_categories_never_count_in_the_objective():
    from soup_search.search.trial import transfer_value

    spec = ObjectiveSpec("toy", {"category_weights": {"a": 3.0}}, held_out_categories=("c",))
    scores = {"a": 1.0, "b": 0.0, "c": 0.0}
    assert objective_value(spec, scores) == pytest.approx(0.75)
    assert transfer_value(spec, scores) == 0.0
    assert transfer_value(ObjectiveSpec("toy", {}), scores) is None
    # the held-out set is part of what the objective is: it changes the cache key
    assert spec.fingerprint() != ObjectiveSpec("toy", {"category_weights": {"a": 3.0}}).fingerprint()
    assert ObjectiveSpec("toy", {}).fingerprint() == ObjectiveSpec("toy", {}, held_out_categories=()).fingerprint()
