"""``bench demo``: which rows the claim is about, and when it holds (no Ray: hand-made results)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from soup_search.analysis.paired import PairedDelta
from soup_search.bench.demo import DemoSeed, Versus, to_json, versus_rows, with_zoo_seed
from soup_search.config import parse_config
from soup_search.pipeline.final_eval import ComparisonRow


def row(name, kind, test, delta=None):
    vs = None if delta is None else PairedDelta(delta, delta - 0.01, delta + 0.01, 0.01, 100)
    return ComparisonRow(name, kind, {}, {}, 0.0, {}, test, {}, vs_best=vs)


def test_the_best_expert_is_the_one_with_the_highest_test_mean():
    result = SimpleNamespace(comparison=(
        row("best soup", "soup", 0.70),
        row("e1", "expert", 0.60, 0.10), row("e2", "expert", 0.65, 0.05),
        row("uniform_all", "uniform_all", 0.62, 0.08), row("grid best", "grid_best", 0.69, 0.01)))
    rows = versus_rows(result)
    assert rows["best_expert"].name == "e2" and rows["best_expert"].vs.delta == 0.05
    assert rows["uniform_all"].test_mean == 0.62
    assert rows["grid_best"].vs.delta == 0.01
    assert "uniform_experts" not in rows


def seed(best_expert, uniform_all, grid):
    def v(d, low, high):
        return Versus("x", 0.5, PairedDelta(d, low, high, 0.01, 1600))
    return DemoSeed(0, 0.7, {"best_expert": v(*best_expert), "uniform_all": v(*uniform_all),
                             "grid_best": v(*grid)}, 1.0)


def test_the_claim_needs_the_margin_and_a_ci_above_zero_and_no_significant_loss_to_the_grid():
    assert seed((0.05, 0.02, 0.08), (0.04, 0.01, 0.07), (-0.002, -0.01, 0.006)).holds()
    assert not seed((0.02, 0.005, 0.035), (0.04, 0.01, 0.07), (0.0, -0.01, 0.01)).holds()   # margin < 0.03
    assert not seed((0.05, 0.02, 0.08), (0.035, -0.001, 0.07), (0.0, -0.01, 0.01)).holds()  # CI touches 0
    assert not seed((0.05, 0.02, 0.08), (0.04, 0.01, 0.07), (-0.02, -0.03, -0.005)).holds()  # worse than grid
    out = to_json([seed((0.05, 0.02, 0.08), (0.04, 0.01, 0.07), (0.0, -0.01, 0.01))])
    assert out["holds_for_all"] is True and out["seeds"][0]["versus"]["uniform_all"]["ci_low"] == 0.01


def test_with_zoo_seed_changes_only_the_seed_and_the_name(tmp_path):
    cfg = parse_config({"name": "demo", "candidates": {"zoo": "tiny"}}, root=tmp_path)
    other = with_zoo_seed(cfg, 2)
    assert other.candidates.zoo_seed == 2 and other.name == "demo-zoo2"
    assert other.candidates.zoo == "tiny" and other.search == cfg.search and cfg.candidates.zoo_seed == 0


@pytest.mark.parametrize("seeds", ["a,b", "0,0", "-1", ""])
def test_bad_zoo_seeds_are_one_line_and_exit_2_before_any_run(seeds, tmp_path, capsys):
    from soup_search.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "demo", "--zoo-seeds", seeds, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--zoo-seeds" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
