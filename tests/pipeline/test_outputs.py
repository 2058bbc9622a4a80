"""The writers take one RunResult and need no Ray: every file, checked on a hand-made result."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from soup_search.analysis.soce import analyze
from soup_search.config import parse_config
from soup_search.merge import MergeRecipe
from soup_search.pipeline.final_eval import (
    ComparisonRow, RunResult, TrialRecord, best_trial, comparison_specs, paired_with_best, trial_records,
)
from soup_search.pipeline.outputs import FILES, mergekit_yaml, report_markdown, trials_frame, write_outputs
from soup_search.search.space import SearchSpace

SCORES = pd.DataFrame({"add": [0.9, 0.2, 0.4], "sort": [0.1, 0.8, 0.5], "copy": [0.3, 0.4, 0.9]},
                      index=pd.Index(["a", "b", "c"], name="model"))


def row(name, kind, weights, dev, test, bits):
    recipe = MergeRecipe.soup({m: w for m, w in weights["all"].items() if w > 0}).model_dump(mode="json")
    correct = {c: b for c, b in zip(("add", "sort", "copy"), bits)}
    per_cat = {c: b.count("1") / len(b) for c, b in correct.items()}
    return ComparisonRow(name, kind, recipe, weights, dev, {"add": dev, "sort": dev, "copy": dev},
                         test, per_cat, test_correct=correct)


@pytest.fixture
def result(tmp_path):
    cfg = parse_config({"name": "unit", "candidates": {"zoo": "tiny"}}, root=tmp_path)
    analysis = analyze(SCORES, tau=0.99)
    log = [{"stage": "search", "params": {"w.add": 1.0, "w.sort": 0.5}, "weights": {"all": {"a": 0.6, "b": 0.4}},
            "value": 0.61, "per_category": {"add": 0.7, "sort": 0.5, "copy": 0.6}},
           {"stage": "search", "params": {"w.add": 0.2, "w.sort": 1.0}, "weights": {"all": {"a": 0.2, "b": 0.8}},
            "value": 0.64, "per_category": {"add": 0.5, "sort": 0.8, "copy": 0.6}},
           {"stage": "grid", "params": {"w.add": 0.5, "w.sort": 0.5}, "weights": {"all": {"a": 0.5, "b": 0.5}},
            "value": 0.64, "per_category": {"add": 0.6, "sort": 0.7, "copy": 0.6}}]
    trials = trial_records(log)
    comparison = paired_with_best((
        row("best soup", "soup", {"all": {"a": 0.2, "b": 0.8}}, 0.64, 0.66, ["1111111111", "1111100000", "1110000000"]),
        row("a", "expert", {"all": {"a": 1.0}}, 0.5, 0.52, ["0000000000", "1111100000", "1110000000"]),
        row("uniform_all", "uniform_all", {"all": {"a": 0.5, "b": 0.5}}, 0.6, 0.61,
            ["1111111111", "1111100000", "1110000000"])))
    return RunResult(config=cfg, analysis=analysis, scores=SCORES, trials=trials,
                     best=best_trial([t for t in trials if t.stage == "search"]), comparison=comparison,
                     candidate_paths={"a": Path("/ckpt/a"), "b": Path("/ckpt/b"), "c": Path("/ckpt/c")},
                     timings={"search": 1.5, "total": 2.0}, objective_revision="objrev",
                     candidate_fps={"a": "fp-a", "b": "fp-b", "c": "fp-c"},
                     profiled={"scored": ["c"], "cached": ["a", "b"]})


def test_trial_records_are_numbered_per_stage():
    recs = trial_records([{"stage": s, "params": {}, "weights": {}, "value": v, "per_category": {}}
                          for s, v in (("search", 0.1), ("grid", 0.2), ("search", 0.3))])
    assert [(r.stage, r.number) for r in recs] == [("search", 0), ("grid", 0), ("search", 1)]


def test_best_trial_ties_go_to_the_earliest():
    trials = [TrialRecord(i, "search", {}, {}, v, {}) for i, v in enumerate([0.2, 0.5, 0.5])]
    assert best_trial(trials).number == 1


def test_a_pruned_trial_is_listed_but_never_the_best():
    recs = trial_records([{"stage": "search", "params": {}, "weights": {}, "value": v, "per_category": {},
                           "timings": {"pruned": pruned}} for v, pruned in ((0.4, False), (0.9, True))])
    assert [r.pruned for r in recs] == [False, True] and recs[1].to_json()["pruned"] is True
    assert best_trial(recs).dev_mean == 0.4


def test_comparison_specs_list_the_baselines_after_the_soup():
    space = SearchSpace.from_analysis({"add": "a", "sort": "b"}, {"add": ["a"], "sort": ["b"]})
    best = TrialRecord(0, "search", space.params_for([0.3, 0.7]), {}, 0.6, {})
    specs = comparison_specs(["a", "b", "c"], space, analyze(SCORES, tau=0.99), best, None)
    assert [kind for _, kind, _, _ in specs] == ["soup", "expert", "expert", "expert", "uniform_all", "uniform_experts"]
    assert specs[0][2]["all"] == pytest.approx({"a": 0.3, "b": 0.7})
    assert specs[-2][2]["all"] == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert all(recipe.merge_method == "linear" for *_, recipe in specs)  # a linear search: linear soups only
    assert {m.model: m.parameters["weight"] for m in specs[0][3].models} == pytest.approx({"a": 0.3, "b": 0.7})


def test_a_method_search_compares_its_best_soup_with_the_same_weights_as_a_linear_soup():
    space = SearchSpace.from_analysis({"add": "a", "sort": "b"}, {"add": ["a"], "sort": ["b"]}, method="ties",
                                      base_model="base", method_params={"density": 0.5}, lambda_range=(0.5, 1.5))
    best = TrialRecord(0, "search", {**space.params_for([0.3, 0.7]), "lambda": 1.2}, {}, 0.6, {})
    specs = comparison_specs(["a", "b", "c"], space, analyze(SCORES, tau=0.99), best, None)
    assert [kind for _, kind, _, _ in specs][:2] == ["soup", "best_weights_linear"]
    soup, linear = specs[0][3], specs[1][3]
    assert (soup.merge_method, soup.base_model, soup.parameters) == ("ties", "base", {"density": 0.5, "lambda": 1.2})
    assert linear.merge_method == "linear" and linear.base_model is None
    assert specs[0][2] == specs[1][2]  # the same weights


def test_results_json_has_every_key_and_the_best_row(result, tmp_path):
    write_outputs(result, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(data) == {"config", "analysis", "trials", "best", "comparison", "timings", "objective_revision",
                         "candidates", "profiled", "lineage", "category_weights", "objective_notes"}
    assert data["objective_revision"] == "objrev" and data["lineage"] is None and data["category_weights"] is None
    assert data["candidates"]["a"] == {"path": "/ckpt/a", "fingerprint": "fp-a"}
    assert data["profiled"] == {"scored": ["c"], "cached": ["a", "b"]}
    assert [t["carried_from"] for t in data["trials"]] == [None, None, None]
    assert data["best"]["trial"] == 1 and data["best"]["test_mean"] == 0.66
    assert [r["kind"] for r in data["comparison"]] == ["soup", "expert", "uniform_all"]
    soup, expert, uniform = data["comparison"]
    assert "delta" not in soup
    # the soup gets all 10 "add" examples the expert misses: Δ = (1.0 - 0.0) / 3 categories, exact p = 2/2^10
    assert expert["delta"] == pytest.approx(1 / 3) and expert["ci_low"] == expert["ci_high"] == pytest.approx(1 / 3)
    assert expert["p_value"] == pytest.approx(2 / 1024)
    assert (uniform["delta"], uniform["ci_low"], uniform["ci_high"], uniform["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    per_example = json.loads((tmp_path / "out" / "per_example.json").read_text())
    assert per_example["rows"]["a"]["add"] == "0000000000"
    assert len(data["trials"]) == 3


def test_every_file_is_written(result, tmp_path):
    out = tmp_path / "out"
    write_outputs(result, out)
    for name in FILES:
        assert (out / name.rstrip("/")).exists(), name
    for png in ("optimization_history.png", "weights_vs_dev.png", "comparison.png", "forest.png"):
        assert (out / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trials_csv_columns(result):
    frame = trials_frame(result)
    assert list(frame["stage"]) == ["search", "search", "grid"]
    assert {"dev_mean", "w[a]", "w[b]", "p[w.add]", "dev[sort]"} <= set(frame.columns)
    assert frame["dev_mean"].tolist() == [0.61, 0.64, 0.64]


def test_a_carried_trial_and_the_lineage_show_in_every_output(result, tmp_path):
    from dataclasses import replace

    from soup_search.pipeline.lineage import Lineage

    log = [{"stage": "search", "params": {}, "weights": {"all": {"a": 1.0}}, "value": 0.7, "per_category": {},
            "timings": {"carried_from": "parent-study", "parent_trial": 4}},
           {"stage": "search", "params": {}, "weights": {"all": {"b": 1.0}}, "value": 0.5, "per_category": {}}]
    trials = trial_records(log)
    assert [t.carried_from for t in trials] == ["parent-study", None]
    lineage = Lineage(parent="/runs/p", parent_study="parent-study", carried=1, seeded=2, fresh=1, skipped=3,
                      notes=("3 parent trials use a candidate that is gone",))
    child = replace(result, trials=trials, best=best_trial(trials), lineage=lineage)
    write_outputs(child, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["lineage"] == {"parent": "/runs/p", "parent_study": "parent-study", "carried": 1, "seeded": 2,
                               "fresh": 1, "skipped": 3, "notes": ["3 parent trials use a candidate that is gone"]}
    assert data["trials"][0]["carried_from"] == "parent-study" and data["best"]["trial"] == 0
    frame = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert frame["carried_from"].fillna("").tolist() == ["parent-study", ""]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Lineage" in report and "trials 1 carried over, 2 seeded, 1 fresh" in report
    assert "- 3 parent trials use a candidate that is gone" in report
    assert "## Lineage" not in report_markdown(result)


def test_soup_yaml_names_checkpoint_paths(result):
    recipe = MergeRecipe.from_yaml(mergekit_yaml(result))
    assert {m.model for m in recipe.models} == {"/ckpt/a", "/ckpt/b"}


def test_report_has_the_comparison_and_experts(result):
    text = report_markdown(result)
    assert "## Held-out comparison (test split)" in text and "## Experts" in text
    assert "| best soup | soup | 0.6400 | 0.6600 |  |" in text
    assert "| a | expert | 0.5000 | 0.5200 | +0.3333 [+0.3333, +0.3333] p=0.00195 * |" in text


def test_the_objectives_notes_are_in_the_report_and_the_json(result, tmp_path):
    """What an objective says about its data (e.g. a split made here, with its seed) is stated."""
    from dataclasses import replace

    note = "lm-eval task 'x' has one evaluation split ('validation'); soup-search split it into dev and test, seed 0"
    write_outputs(replace(result, objective_notes=(note,)), tmp_path / "out")
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"\n- {note}\n" in report and report.index(note) < report.index("## Experts")
    assert json.loads((tmp_path / "out" / "results.json").read_text())["objective_notes"] == [note]
    assert "- " not in report_markdown(result).split("## Experts")[0]
