"""The README's "Souping your own models" recipe end to end: a folder of fine-tunes (the tiny zoo's
experts), a benchmark exported as lm-eval multiple-choice tasks, `soup-search run`, the report."""

from __future__ import annotations

import json

import pytest
import yaml

from soup_search.zoo.benchmark import write_benchmark
from tests.helpers import cli

pytestmark = pytest.mark.slow

TASKS = ["toy_sort", "toy_reverse", "toy_count"]


def test_a_search_over_exported_lm_eval_tasks(tiny_zoo, ray_session, tmp_path, capsys):
    bench = write_benchmark(tmp_path / "bench", "lm-eval", seed=7, choices=4, n_train=8, n_dev=24, n_test=24)
    config = {
        "name": "own-models",
        "candidates": {"paths": [str(p) for p in tiny_zoo.experts.values()]},
        "objective": {"name": "lm_eval", "params": {"tasks": TASKS, "include_path": "bench"}},
        "analysis": {"tau": 0.5, "top_k": 2},
        "search": {"sampler": "tpe", "n_trials": 6, "seed": 0},
        "resources": {"shards": 2, "scorers": 2, "shard_cpus": 0.25, "scorer_cpus": 0.5},
    }
    assert bench.root == tmp_path / "bench"  # (include_path is relative to the config's folder)
    (tmp_path / "own.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    cli("run", str(tmp_path / "own.yaml"), "--out", str(out))
    assert "held-out comparison" in capsys.readouterr().out

    results = json.loads((out / "results.json").read_text())
    assert results["analysis"]["categories"] == TASKS
    assert list(results["best"]["test_per_category"]) == TASKS
    assert results["best"]["dev_mean"] == pytest.approx(max(t["dev_mean"] for t in results["trials"]))
    rows = results["comparison"]
    assert rows[0]["kind"] == "soup" and {"expert", "uniform_all", "uniform_experts"} <= {r["kind"] for r in rows}
    for row in rows[1:]:  # each other soup against the best one on the same test examples
        assert row["ci_low"] <= row["delta"] <= row["ci_high"] and 0 <= row["p_value"] <= 1
        assert row["delta"] == pytest.approx(results["best"]["test_mean"] - row["test_mean"])
        assert list(row["test_per_category"]) == TASKS
    report = (out / "report.md").read_text()
    assert "## Held-out comparison" in report and "toy_sort" in report
