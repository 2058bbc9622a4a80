"""``bench methods``: the experts merged by each method on the tiny zoo (linear, ties and a few-step
fda), each scored on the test split with its intervals, time and memory; the option checks and the
binomial interval by themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from soup_search.bench.methods import (
    binomial_interval, method_recipes, parse_methods, parse_params, parse_seeds,
)
from soup_search.cli import main
from soup_search.errors import ConfigError
from soup_search.scoring.protocol import ScoreResult
from tests.helpers import write_config

FEW_STEPS = ["fda.anchors=4", "fda.tokens=4", "fda.anchor_steps=3", "fda.fit_steps=3"]


def test_bench_methods_merges_the_experts_by_each_method_and_scores_them(tiny_zoo, tmp_path, capsys):
    config = write_config(tmp_path, "methods", seed=41)
    out, figures = tmp_path / "work", tmp_path / "methods.json"
    args = ["bench", "methods", "--config", str(config), "--methods", "ties,fda,linear", "--out", str(out),
            "--json", str(figures)]
    try:
        main([*args, *(a for p in FEW_STEPS for a in ("--param", p))])
    except SystemExit as exc:
        assert not exc.code
    data = json.loads(figures.read_text())
    rows = {r["method"]: r for r in data["rows"]}
    assert [r["method"] for r in data["rows"]] == ["linear", "ties", "fda"]  # linear first: the others pair with it
    experts = set(data["experts"].values())
    assert len(experts) >= 2 and data["base"] == str(tiny_zoo.base)
    for name, row in rows.items():
        recipe = row["recipe"]
        assert {Path(m["model"]).name for m in recipe["models"]} == experts, name
        assert all(m["parameters"] == {"weight": 1.0} for m in recipe["models"])
        assert recipe.get("base_model") == (None if name == "linear" else str(tiny_zoo.base))
        assert row["ci_low"] <= row["test_mean"] <= row["ci_high"] and row["ci_high"] - row["ci_low"] > 0
        assert row["test_mean"] == pytest.approx(sum(row["test_per_category"].values()) / 8)
        assert row["merge_s"] > 0 and 0 < row["merge_cpu_s"] and row["peak_mib"] >= row["merge_mib"] >= 0 and row["peak_mib"] > 50
        assert (out / f"{list(rows).index(name)}-{name}" / "out" / "model.safetensors").is_file()
    assert rows["linear"]["vs_linear"] is None
    for name in ("ties", "fda"):
        vs = rows[name]["vs_linear"]
        assert vs["delta"] == pytest.approx(rows[name]["test_mean"] - rows["linear"]["test_mean"])
        assert vs["ci_low"] <= vs["delta"] <= vs["ci_high"] and 0 <= vs["p_value"] <= 1
    assert rows["fda"]["seed"] == 0 and rows["fda"]["recipe"]["parameters"] == {
        "anchors": 4, "tokens": 4, "anchor_steps": 3, "fit_steps": 3, "seed": 0}
    captured = capsys.readouterr()
    printed = captured.out
    assert "bench methods" in printed and "\n ties " in printed and "\n fda seed 0 " in printed
    assert "Loading weights" not in captured.out + captured.err  # transformers' loading bars stay quiet


def test_the_binomial_interval_of_a_mean_of_categories():
    result = ScoreResult({"a": 0.5, "b": 0.9}, {"a": 100, "b": 400})
    low, high = binomial_interval(result, ["a"], None)
    assert (low, high) == pytest.approx((0.5 - 1.96 * 0.05, 0.5 + 1.96 * 0.05), abs=1e-4)
    low, high = binomial_interval(result, ["a", "b"], {"b": 3})
    half = 1.959964 * ((0.25 ** 2) * 0.25 / 100 + (0.75 ** 2) * 0.09 / 400) ** 0.5
    assert (low, high) == pytest.approx((0.8 - half, 0.8 + half), abs=1e-6)
    assert binomial_interval(ScoreResult({"a": 1.0}, {"a": 10}), ["a"], None) == (1.0, 1.0)


def test_recipes_take_the_base_where_the_method_needs_one_and_a_seed_per_row_for_fda(tmp_path):
    rows = method_recipes(["linear", "tsv", "fda"], [tmp_path / "e1", tmp_path / "e2"], tmp_path / "base",
                          [0, 3], {"fda": {"anchors": 8}})
    assert [(m, s) for m, s, _ in rows] == [("linear", None), ("tsv", None), ("fda", 0), ("fda", 3)]
    assert rows[0][2].base_model is None and rows[1][2].base_model == str(tmp_path / "base")
    assert rows[3][2].parameters == {"anchors": 8, "seed": 3}


@pytest.mark.parametrize("call, problem", [
    (lambda: parse_methods("linear,nope"), "unknown merge method 'nope'"),
    (lambda: parse_methods("linear,linear"), "'linear' is given twice"),
    (lambda: parse_methods("interpolate"), "interpolate merges a fixed number of models"),
    (lambda: parse_methods(" , "), "no methods given"),
    (lambda: parse_seeds("0,0"), "must be distinct whole numbers"),
    (lambda: parse_seeds("a"), "must be distinct whole numbers"),
    (lambda: parse_params(["fda.anchors"], ["fda"]), "is not METHOD.KEY=VALUE"),
    (lambda: parse_params(["tsv.fraction=0.5"], ["fda"]), "'tsv' is not among --methods fda"),
])
def test_bad_options_are_named(call, problem):
    with pytest.raises(ConfigError, match=problem):
        call()


def test_bad_options_exit_2_in_one_line_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "methods", "--methods", "linear,nope", "--param", "fda.anchors=4",
              "--out", str(tmp_path / "work")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "unknown merge method 'nope'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "work").exists()
