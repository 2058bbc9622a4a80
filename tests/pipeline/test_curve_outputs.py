"""A curve's files and regimes from made-up results (no Ray): JSON, CSV table, plot, and the --lambdas syntax."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from soup_search.cli.curves import parse_values
from soup_search.errors import ConfigError
from soup_search.pipeline.curve import Curve, CurvePoint, write_curve
from soup_search.pipeline.curve_family import module_grid_family, sweep_family, transfer_family
from soup_search.scoring.protocol import ObjectiveSpec, ScoreResult

NAMES = {"a": "verbose", "b": "terse"}
SPEC = ObjectiveSpec("toy", {"seed": 0})


def result(right: dict[str, int], tokens: int, n: int = 40) -> ScoreResult:
    """``right[c]`` of ``n`` answers right in category ``c``, every answer ``tokens`` long but one 1 longer."""
    bits = {c: "1" * k + "0" * (n - k) for c, k in right.items()}
    return ScoreResult({c: k / n for c, k in right.items()}, {c: n for c in right}, 1.0, bits,
                       {c: [tokens + 1] + [tokens] * (n - 1) for c in right})


def curve(family, results) -> Curve:
    points = tuple(CurvePoint(at, recipe, r, False, SPEC) for (at, recipe), r in zip(family.points, results))
    return Curve(family, {"a": "/m/verbose", "b": "/m/terse"}, points, {}, 1.0)


def test_parse_values():
    assert parse_values("0:1:0.1", "--lambdas") == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    alphas = parse_values("-1:2:0.25", "--alphas")
    assert alphas[:3] == [-1.0, -0.75, -0.5] and len(alphas) == 13
    assert parse_values("0:1:0.3", "x") == [0.0, 0.3, 0.6, 0.9]  # STOP only when the steps reach it
    assert parse_values("1, 0.5,0,0.5", "x") == [0.0, 0.5, 1.0]
    for bad in ("0:1", "0:1:0", "1:0:0.1", "a", "", "0:1:x", "0,nan"):
        with pytest.raises(ConfigError, match="--lambdas"):
            parse_values(bad, "--lambdas")


def test_a_sweep_writes_its_table_plot_and_json_with_the_regime_where_categories_switch(tmp_path):
    """Category ``x`` falls and ``y`` rises between λ 0.4 and 0.6, answers get longer there too:
    a transition named after the series that switch, flat on either side."""
    lambdas = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    right = [(36, 2), (36, 2), (35, 3), (3, 36), (2, 37), (2, 37)]
    tokens = [2, 2, 2, 9, 9, 9]
    results = [result({"x": x, "y": y}, t) for (x, y), t in zip(right, tokens)]
    data = curve(sweep_family(NAMES, lambdas), results).to_json()
    assert [(r["start"], r["end"], r["kind"]) for r in data["regimes"]] == [
        (0.0, 0.4, "flat"), (0.4, 0.6, "transition"), (0.6, 1.0, "flat")]
    assert set(data["regimes"][1]["changes"]) == {"tokens", "accuracy:x", "accuracy:y"}
    first = data["points"][0]
    assert first["mean"] == pytest.approx(38 / 80) and first["mean_tokens"] == pytest.approx(2 + 2 / 80)
    assert first["recipe"]["merge_method"] == "interpolate" and first["recipe"]["parameters"]["lambda"] == 0.0
    paths = write_curve(data, tmp_path)
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(data))
    table = pd.read_csv(paths["csv"])
    assert list(table.columns[:3]) == ["lambda", "x", "y"] and len(table) == 6
    assert paths["png"].stat().st_size > 10_000


def test_the_module_grid_and_the_transfer_write_their_own_files(tmp_path):
    grid = module_grid_family(NAMES, [0.0, 1.0])
    cells = [{"lambda_attn": a, "lambda_mlp": m} for a in (0.0, 1.0) for m in (0.0, 1.0)]
    assert [at for at, _ in grid.points] == cells
    data = curve(grid, [result({"x": 10 * i}, 2 + i) for i in range(4)]).to_json()
    assert data["regimes"] == [] and write_curve(data, tmp_path)["png"].name == "sweep_modules.png"

    names = {"target": "t", "plus": "p", "minus": "m"}
    family = transfer_family(names, [-1.0, 0.0, 1.0])
    recipe = family.points[0][1]
    assert recipe.base_model == "t" and [m.parameters["weight"] for m in recipe.models] == [-1.0, 1.0]
    assert [m.parameters["weight"] for m in family.points[1][1].models] == [0.0, 0.0]  # no -0.0
    assert set(family.references()) == {"target", "plus", "minus"}


def test_a_config_names_the_zoo_models_the_curves_may_take():
    from soup_search.config import load_config
    from soup_search.pipeline.curve_inputs import zoo_names

    configs = Path(__file__).resolve().parents[2] / "configs"
    assert zoo_names(load_config(configs / "tiny-verbose.yaml")) == ["base", "verbose", "terse"]
    assert zoo_names(load_config(configs / "tiny.yaml"))[:2] == ["base", "expert_add_sub"]
