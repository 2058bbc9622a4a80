"""``soup-search bench search``: the cost of reaching the grid's best, per method, and its CLI."""

from __future__ import annotations

import json

import pytest

from soup_search.bench.search import MethodRow, between_trials, cost_to_reach, first_reach, scorers_busy
from soup_search.engine.run_store import read_evaluations
from tests.helpers import cli, write_config


def test_first_reach():
    assert first_reach([0.1, 0.5, 0.4, 0.7], 0.5) == 2
    assert first_reach([0.1, 0.2], 0.5) is None


def row(value, n, pruned=False, weights=None):
    return {"value": value, "counts": {"a": n // 2, "b": n - n // 2}, "timings": {"pruned": pruned},
            "weights": {"all": weights or {"x": 0.5, "y": 0.5}}}


def test_cost_counts_every_example_scored_until_a_complete_trial_reaches_the_target():
    rows = [row(0.4, 100), row(0.9, 25, pruned=True), row(0.7, 100), row(0.8, 100)]
    assert cost_to_reach(rows, 0.7) == (225, 3)  # a pruned trial's running value never counts as reaching
    assert cost_to_reach(rows, 0.95) == (None, None)


def test_one_candidate_alone_costs_nothing_the_profile_scored_it():
    alone = row(0.6, 100, weights={"x": 1.0, "y": 0.0})
    per_module = row(0.6, 100) | {"weights": {"attn": {"x": 1.0, "y": 0.0}, "mlp": {"x": 1.0}}}
    mixed_modules = row(0.6, 100) | {"weights": {"attn": {"x": 1.0, "y": 0.0}, "mlp": {"y": 1.0}}}
    assert cost_to_reach([alone, per_module, row(0.7, 100)], 0.7) == (100, 3)
    assert cost_to_reach([mixed_modules, row(0.7, 100)], 0.7) == (200, 2)  # two models: a soup


def test_median_and_worst_count_a_seed_that_never_reached_as_infinite():
    r = MethodRow(3, "tpe", "stick", True, [100, None, 300], [1, None, 3], grid_examples=1000)
    assert r.median_examples == 300 and r.worst_examples is None
    assert MethodRow(3, "tpe", "stick", True, [100, None], [1, None], 1000).median_examples is None
    assert MethodRow(3, "tpe", "stick", True, [100, 200, 300], [1, 2, 3], 1000).worst_trials == 3


def timed(stage: str, pid: int, started: float, trial_s: float, scoring_s: float) -> dict:
    return {"stage": stage, "timings": {"pid": pid, "started": started, "trial_s": trial_s, "scoring_s": scoring_s}}


def test_time_between_trials_and_how_busy_the_scorers_were_by_hand():
    rows = [timed("a", 1, 0.0, 1.0, 0.8), timed("a", 1, 1.5, 1.0, 0.8),  # 0.5 s between, on actor 1
            timed("a", 2, 0.2, 1.0, 0.9), timed("a", 2, 1.3, 1.0, 0.9),  # 0.1 s between, on actor 2
            timed("b", 1, 10.0, 2.0, 2.0)]  # another stage: nothing before it counts as between
    assert sorted(between_trials(rows)) == pytest.approx([0.1, 0.5])
    # stage a: 3.4 s of scoring over 2 scorers × 2.5 s; stage b: 2 s over 2 × 2 s
    assert scorers_busy(rows, 2) == pytest.approx((3.4 + 2.0) / (2 * (2.5 + 2.0)))


@pytest.mark.slow
def test_bench_search_prints_and_writes_figures(tiny_zoo, ray_session, tmp_path, capsys):
    cfg = write_config(tmp_path, "bench", seed=109)
    out = tmp_path / "bench.json"
    cli("bench", "search", "--config", str(cfg), "--experts", "2", "--samplers", "tpe,random", "--seeds", "1",
        "--budget", "4", "--json", str(out), "--keep", str(tmp_path / "kept"))
    printed = capsys.readouterr().out
    assert "to first reach the grid's best" in printed and "per-trial overhead" in printed
    assert "the grid's best − the uniform soup" in printed
    figures = json.loads(out.read_text())
    pool = figures["pools"][0]
    assert pool["grid_points"] == 9 and len(pool["groups"]) == 2 and pool["grid_examples"] == 9 * pool["examples_per_trial"]
    # the target against where every search starts, paired on the same dev examples: with 2 experts
    # the uniform soup is a grid point, so the delta is the grid's best value minus its value
    grid = read_evaluations(tmp_path / "kept" / "run.sqlite", "grid-2")
    uniform = next(r["value"] for r in grid if sorted(r["weights"]["all"].values()) == [0.5, 0.5])
    d = pool["best_vs_uniform"]
    assert d["delta"] == pytest.approx(pool["grid_best"] - uniform) and d["n"] == pool["examples_per_trial"]
    assert d["ci_low"] <= d["delta"] <= d["ci_high"] and 0 <= d["p_value"] <= 1
    assert [(r["sampler"], r["prune"]) for r in figures["rows"]] == [("tpe", True), ("tpe", False),
                                                                     ("random", True), ("random", False)]
    assert all(len(r["examples"]) == 1 for r in figures["rows"])
    assert figures["trials_scored"] >= 9 and 0 <= figures["overhead_fraction"] < 1
    assert figures["scoring_s_mean"] > 0 and figures["trial_s_mean"] >= figures["scoring_s_mean"]
    assert "between trials" in printed and figures["between_s_median"] > 0 and 0 < figures["scorers_busy"] < 1


def test_bench_search_reports_every_bad_option_at_once(capsys):
    with pytest.raises(SystemExit) as exc:
        from soup_search.cli import main

        main(["bench", "search", "--experts", "1", "--samplers", "sa", "--weights", "softmax", "--seeds", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--experts" in err and "--samplers" in err and "--weights" in err and "--seeds" in err
