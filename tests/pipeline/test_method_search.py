"""``search.method``: a SoCE search whose soups are made with a task-vector method (TIES here):
the experts and their weights are searched as for a linear soup, the method's ``lambda`` too, and
the base model is the reference, never an expert."""

from __future__ import annotations

import json

import pytest
import yaml

from soup_search.config import load_config
from soup_search.engine.run_store import read_evaluations
from soup_search.errors import ConfigError
from soup_search.pipeline.state import STATE
from tests.helpers import cli, write_config

pytestmark = pytest.mark.slow


def test_a_ties_search_picks_experts_weights_and_lambda(tiny_zoo, ray_session, tmp_path):
    cfg = write_config(tmp_path, "ties", seed=121, n_trials=5, categories=["sort", "reverse", "count"],
                       method="ties", base_model="base", method_params={"density": 0.5}, lambda_range=[0.5, 1.5])
    data = yaml.safe_load(cfg.read_text())
    data["candidates"]["include_base"] = True
    cfg.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    cli("run", str(cfg), "--out", str(out))

    rows = read_evaluations(out / STATE / "run.sqlite", "search")
    assert len(rows) == 5
    lambdas = set()
    for row in rows:
        recipe = row["recipe"]
        assert recipe["merge_method"] == "ties" and recipe["base_model"] == "base"
        assert recipe["parameters"]["density"] == 0.5
        lam = recipe["parameters"]["lambda"]
        assert 0.5 <= lam <= 1.5 and lam == row["params"]["lambda"]
        lambdas.add(round(lam, 6))
        assert "base" not in {m["model"] for m in recipe["models"]}  # the reference, never an expert
    assert len(lambdas) > 1  # lambda was searched, not fixed
    results = json.loads((out / "results.json").read_text())
    assert "base" not in results["analysis"]["experts"].values()
    kinds = [row["kind"] for row in results["comparison"]]
    assert kinds[:2] == ["soup", "best_weights_linear"]
    best, linear = results["comparison"][:2]
    assert best["recipe"]["merge_method"] == "ties" and linear["recipe"]["merge_method"] == "linear"
    assert {m["model"] for m in best["recipe"]["models"]} == {m["model"] for m in linear["recipe"]["models"]}
    assert linear["ci_low"] <= linear["delta"] <= linear["ci_high"]  # compared with the best soup, with its CI


@pytest.mark.parametrize("search, candidates, problem", [
    ({"method": "interpolate"}, {}, "'search.pair' is required by search.method interpolate"),
    ({"method": "nope"}, {}, "unknown merge method 'nope'"),
    ({"method": "ties"}, {}, "'search.base_model' is required by search.method ties"),
    ({"method": "ties", "base_model": "base"}, {}, "set candidates.include_base: true"),
    ({"method": "linear", "base_model": "base"}, {"include_base": True}, "takes none: remove it"),
    ({"method": "ties", "base_model": "base", "method_params": {"weight": 2}}, {"include_base": True},
     "'search.method_params.weight': the search chooses the weights"),
    ({"method": "ties", "base_model": "base", "method_params": {"dense": 0.5}}, {"include_base": True},
     "'search.method_params.dense' is not a parameter of ties; use: density, int8_mask"),
    ({"lambda_range": [0.5, 1.5]}, {}, "'search.lambda_range': linear has no lambda"),
    ({"method": "task_arithmetic", "base_model": "base", "lambda_range": [2, 1]}, {"include_base": True},
     "0 <= low < high"),
])
def test_bad_method_settings_are_named(tmp_path, search, candidates, problem):
    cfg = {"candidates": {"zoo": "tiny", **candidates}, "search": search}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert problem in str(err.value)


def test_a_method_search_cannot_be_a_lineage_child(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"candidates": {"zoo": "tiny", "include_base": True},
                                    "search": {"method": "ties", "base_model": "base"},
                                    "lineage": {"parent": str(tmp_path)}}))
    with pytest.raises(ConfigError, match="cannot be a lineage child"):
        load_config(path)
