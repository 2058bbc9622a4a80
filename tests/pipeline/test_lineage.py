"""The pipeline side of a child search, without Ray: reading the parent run, and the summary."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from soup_search.analysis.soce import analyze
from soup_search.config import parse_config
from soup_search.errors import ConfigError
from soup_search.pipeline.lineage import LineagePlan, read_parent, summarize
from soup_search.pipeline.state import study_name
from soup_search.search.lineage import CarriedTrial, CarryOver
from soup_search.search.space import SearchSpace

SCORES = pd.DataFrame({"add": [0.9, 0.2, 0.4], "sort": [0.1, 0.8, 0.5], "copy": [0.3, 0.4, 0.9]},
                      index=pd.Index(["a", "b", "c"], name="model"))


def write_parent(folder, tmp_path, **results):
    cfg = parse_config({"name": "parent", "candidates": {"zoo": "tiny"},
                        "search": {"per_module": True, "min_weight": 0.05}}, root=tmp_path)
    analysis = analyze(SCORES, tau=0.99)
    folder.mkdir()
    data = {"config": cfg.model_dump(mode="json"), "analysis": analysis.to_json(),
            "trials": [{"number": 0, "stage": "search", "params": {}, "weights": {"all": {"a": 1.0}}, "dev_mean": 0.5,
                        "dev_per_category": {"add": 0.5}, "pruned": False},
                       {"number": 0, "stage": "grid", "params": {}, "weights": {"all": {"b": 1.0}}, "dev_mean": 0.4,
                        "dev_per_category": {"add": 0.4}, "pruned": False}], **results}
    (folder / "results.json").write_text(json.dumps(data))
    return cfg, analysis


def child_config(tmp_path, parent):
    return parse_config({"name": "child", "candidates": {"zoo": "tiny"}, "lineage": {"parent": parent}},
                        root=tmp_path)


def test_the_parent_is_read_with_its_own_space_and_study(tmp_path):
    parent_cfg, analysis = write_parent(tmp_path / "p", tmp_path, objective_revision="r1",
                                        candidates={"a": {"path": "/a", "fingerprint": "fa"}})
    parent = read_parent(child_config(tmp_path, "p"))
    assert parent.study == study_name(parent_cfg) and parent.folder == str(tmp_path / "p")
    assert parent.space.per_module and parent.space.min_weight == 0.05
    assert parent.space.groups == tuple(analysis.experts)
    assert parent.objective_revision == "r1" and parent.candidate_fps == {"a": "fa"} and parent.candidates == ("a",)
    assert [t.dev_mean for t in parent.trials] == [0.5]  # the search stage only


def test_a_parent_from_before_fingerprints_names_its_candidates_from_the_analysis(tmp_path):
    write_parent(tmp_path / "p", tmp_path)
    parent = read_parent(child_config(tmp_path, "p"))
    assert parent.candidate_fps is None and parent.objective_revision is None
    assert parent.candidates == ("a", "b", "c")


def test_a_parent_results_file_gone_bad_is_one_config_error(tmp_path):
    write_parent(tmp_path / "p", tmp_path)
    cfg = child_config(tmp_path, "p")
    good = json.loads((tmp_path / "p" / "results.json").read_text())
    for bad in ({"config": {"bogus": 1}, "analysis": {}, "trials": []}, {**good, "analysis": {}},
                {**good, "trials": [{"stage": "search"}]}):
        (tmp_path / "p" / "results.json").write_text(json.dumps(bad))
        with pytest.raises(ConfigError) as err:
            read_parent(cfg)
        (problem,) = err.value.problems
        assert "not a readable soup-search results file" in problem and "\n" not in problem


def test_the_summary_counts_the_seeds_the_search_evaluated(tmp_path):
    write_parent(tmp_path / "p", tmp_path)
    parent = read_parent(child_config(tmp_path, "p"))
    space = SearchSpace.from_analysis({"x": "a", "y": "b"}, {"x": ["a"], "y": ["b"]})
    seeds = (space.params_for([0.2, 0.8]), space.params_for([0.6, 0.4]))
    carried = CarriedTrial(3, space.params_for([1.0, 0.0]), {}, 0.7, {})
    plan = LineagePlan(parent, CarryOver((carried,), skipped=2, notes=("2 parent trials were pruned",)), seeds,
                       notes=("newcomers: c",))
    log = [{"stage": "search", "params": carried.params, "timings": {"carried_from": "s", "parent_trial": 3}},
           {"stage": "search", "params": seeds[0], "timings": {"pruned": True}},
           {"stage": "search", "params": space.params_for([0.5, 0.5]), "timings": {}},
           {"stage": "grid", "params": seeds[1], "timings": {}}]
    lineage = summarize(plan, log, space)
    assert (lineage.carried, lineage.seeded, lineage.fresh, lineage.skipped) == (1, 1, 2, 2)
    assert lineage.notes == ("2 parent trials were pruned", "newcomers: c")
    assert lineage.to_json()["parent_study"] == parent.study
