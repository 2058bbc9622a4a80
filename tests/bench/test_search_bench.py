"""``soup-search bench search`` runs the grid and TPE on a candidate set and prints its figures."""

from __future__ import annotations

import json

import pytest

from soup_search.bench.search import first_reach
from tests.helpers import cli, write_config


def test_first_reach():
    assert first_reach([0.1, 0.5, 0.4, 0.7], 0.5) == 2
    assert first_reach([0.1, 0.2], 0.5) is None


@pytest.mark.slow
def test_bench_search_prints_and_writes_figures(tiny_zoo, ray_session, tmp_path, capsys):
    cfg = write_config(tmp_path, "bench", seed=109, tau=0.999)
    out = tmp_path / "bench.json"
    cli("bench", "search", "--config", str(cfg), "--categories", "reverse,count", "--seeds", "1",
        "--budget", "4", "--json", str(out))
    printed = capsys.readouterr().out
    assert "TPE evaluations to reach it" in printed and "per-trial overhead" in printed
    figures = json.loads(out.read_text())
    assert figures["grid_points"] == 9 and len(figures["groups"]) == 2
    assert figures["tpe_budget"] == 4 and len(figures["tpe_evals_to_grid_best"]) == 1
    assert figures["trials_scored"] >= 1 and 0 <= figures["overhead_fraction"] < 1
    assert figures["scoring_s_mean"] > 0 and figures["trial_s_mean"] >= figures["scoring_s_mean"]
