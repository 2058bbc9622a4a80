"""``search.method: interpolate`` and ``task_vector`` end to end on the tiny zoo: the config names the
models, the search's numbers are λ (λ_attn, λ_mlp) or one α per vector, the baselines are evaluated
first and compared with the best soup, and a baseline that is one model alone scores as that model."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from soup_search.engine.run_store import read_evaluations
from soup_search.pipeline.state import STATE
from tests.helpers import cli, write_config

pytestmark = pytest.mark.slow

CATEGORIES = ["sort", "reverse", "count"]


def _run(tmp_path, name: str, seed: int, candidates: dict | None = None, **search) -> tuple[list[dict], dict, pd.DataFrame]:
    cfg = write_config(tmp_path, name, seed=seed, n_trials=4, categories=CATEGORIES, **search)
    data = yaml.safe_load(cfg.read_text())
    data["candidates"].update(candidates or {})
    cfg.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    cli("run", str(cfg), "--out", str(out))
    scores = pd.read_csv(out / "scores.csv", index_col=0)  # each candidate's dev scores (the profile)
    return read_evaluations(out / STATE / "run.sqlite", "search"), json.loads((out / "results.json").read_text()), scores


def _same_scores(per_category: dict, profile: pd.Series) -> bool:
    return all(abs(per_category[c] - profile[c]) < 1e-6 for c in profile.index)  # (the CSV has 6 decimals)


def test_a_per_module_interpolation_search_searches_lambda_attn_and_lambda_mlp(tiny_zoo, ray_session, tmp_path):
    a, b = "expert_sort_max", "expert_reverse_copy"
    rows, results, scores = _run(tmp_path, "interpolate", 131, method="interpolate", pair=[a, b], per_module=True)

    assert len(rows) == 4
    baselines = [{"lambda_attn": v, "lambda_mlp": v} for v in (0.0, 0.5, 1.0)]
    assert all(p in [r["params"] for r in rows] for p in baselines)  # (rows come in the order they finished)
    for row in rows:
        recipe, lam_attn, lam_mlp = row["recipe"], row["params"]["lambda_attn"], row["params"]["lambda_mlp"]
        assert recipe["merge_method"] == "interpolate" and [m["model"] for m in recipe["models"]] == [a, b]
        assert recipe["parameters"]["lambda"] == [{"filter": "self_attn", "value": lam_attn},
                                                  {"filter": "mlp", "value": lam_mlp},
                                                  {"value": pytest.approx((lam_attn + lam_mlp) / 2)}]
        assert row["weights"]["attn"] == {a: lam_attn, b: pytest.approx(1 - lam_attn)}
    assert len([r for r in rows if r["params"] not in baselines]) == 1  # the sampler's own point

    comparison = results["comparison"]
    assert [(r["name"], r["kind"]) for r in comparison] == [
        ("best soup", "soup"), (f"lambda 0 ({b})", "baseline"), ("lambda 0.5 (midpoint)", "baseline"),
        (f"lambda 1 ({a})", "baseline")]
    # λ = 0 is B alone and λ = 1 is A alone: on the full dev split they score exactly as the profiled models
    assert _same_scores(comparison[1]["dev_per_category"], scores.loc[b])
    assert _same_scores(comparison[3]["dev_per_category"], scores.loc[a])
    best = max((r for r in rows if not r["timings"].get("pruned")), key=lambda r: r["value"])
    assert results["best"]["params"] == best["params"]
    for row in comparison[1:]:
        assert row["ci_low"] <= row["delta"] <= row["ci_high"]
        assert row["delta"] == pytest.approx(comparison[0]["test_mean"] - row["test_mean"])


def test_a_task_vector_search_searches_one_alpha_per_vector(tiny_zoo, ray_session, tmp_path):
    target, plus = "expert_add_sub", "expert_sort_max"
    rows, results, scores = _run(tmp_path, "task_vector", 132, {"include_base": True}, method="task_vector",
                                 target=target, vectors=[{"plus": plus, "minus": "base"}], alpha_range=[-1, 2])
    name = f"alpha.{plus}-base"

    assert len(rows) == 4
    assert {name: 0.0} in [r["params"] for r in rows] and {name: 1.0} in [r["params"] for r in rows]
    for row in rows:
        alpha, recipe = row["params"][name], row["recipe"]
        assert -1 <= alpha <= 2
        assert recipe["merge_method"] == "task_arithmetic" and recipe["base_model"] == target
        assert {m["model"]: m["parameters"]["weight"] for m in recipe["models"]} == {plus: alpha, "base": -alpha}
        assert row["weights"] == {"all": {target: 1.0, plus: alpha, "base": -alpha}}

    comparison = results["comparison"]
    assert [(r["name"], r["kind"]) for r in comparison] == [
        ("best soup", "soup"), (f"alpha 0 ({target})", "baseline"), ("alpha 1", "baseline")]
    # α = 0 is the target itself: on the full dev split it scores exactly as the profiled target
    assert _same_scores(comparison[1]["dev_per_category"], scores.loc[target])
    assert "uniform_experts" not in {r["kind"] for r in comparison}
    for row in comparison[1:]:
        assert row["ci_low"] <= row["delta"] <= row["ci_high"]
