"""pick_experts and analyze: ranking, ties, candidates, JSON."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from soup_search.analysis import Analysis, analyze, pick_experts
from soup_search.errors import AnalysisError


@pytest.fixture
def table():
    # x and y are weakly correlated; "tie" and "tie2" score the same on x
    return pd.DataFrame(
        {"x": [0.9, 0.9, 0.5, 0.2, 0.1], "y": [0.1, 0.3, 0.8, 0.6, 0.9], "z": [0.5, 0.4, 0.3, 0.7, 0.2]},
        index=["tie", "tie2", "mid", "low", "yman"],
    )


def test_expert_ties_broken_by_mean_then_name(table):
    experts, alternates = pick_experts(table, [["x"], ["y"]], top_k=3)
    # tie (mean 0.5) vs tie2 (mean 0.533): tie2 wins on mean
    assert experts == {"x": "tie2", "y": "yman"}
    assert alternates == {"x": ["tie2", "tie", "mid"], "y": ["yman", "mid", "low"]}
    same = table.copy()
    same.loc["tie2"] = same.loc["tie"]
    experts, alternates = pick_experts(same, ["x"], top_k=2)
    assert experts == {"x": "tie"} and alternates == {"x": ["tie", "tie2"]}  # then by name


def test_candidates_restrict_choice_only(table):
    experts, alternates = pick_experts(table, ["x", ["y", "z"]], candidates=["mid", "low"], top_k=5)
    assert experts == {"x": "mid", "y + z": "low"}  # low: (0.6+0.7)/2 = 0.65 > mid 0.55
    assert alternates == {"x": ["mid", "low"], "y + z": ["low", "mid"]}
    with pytest.raises(AnalysisError, match=r"unknown model 'tye' \(did you mean 'tie'"):
        pick_experts(table, ["x"], candidates=["tye"], top_k=2)
    with pytest.raises(AnalysisError, match="top_k must be a positive integer"):
        pick_experts(table, ["x"], top_k=0)


def test_analyze_json_keys_and_roundtrip(table):
    result = analyze(table, candidates=["tie", "mid", "yman"], tau=0.5, top_k=2)
    data = result.to_json()
    for key in ("models", "categories", "correlation", "weak_categories", "clusters", "experts", "alternates",
                "method", "tau", "candidates", "top_k"):
        assert key in data
    assert data["models"] == ["tie", "tie2", "mid", "low", "yman"]  # correlation used all models
    assert data["candidates"] == ["tie", "mid", "yman"]
    assert data["correlation"]["x"]["y"] == pytest.approx(table["x"].corr(table["y"]))
    assert set(data["experts"]) == set(data["weak_categories"])
    assert data["experts"]["x"] == "tie"
    assert data["weak_categories"] == ["x", "y", "z"]
    assert data["clusters"] == [["x", "y"], ["z"]]  # |ρ(x, y)| = 0.857 ≥ τ
    assert data["alternates"] == {"x": ["tie", "mid"], "y": ["yman", "mid"], "z": ["tie", "mid"]}
    narrow = analyze(table, tau=0.3)  # |ρ(y, ·)| ≥ 0.479, so y is not weak
    assert narrow.weak_categories == ["x", "z"]
    assert narrow.experts == {"x": "tie2", "z": "low"}
    back = Analysis.from_json(json.loads(json.dumps(data)))
    assert back.to_json() == data


def test_analyze_cluster_grouping_and_no_weak(table):
    result = analyze(table, grouping="cluster", tau=0.0)  # τ=0: one cluster of everything
    assert result.clusters == [["x", "y", "z"]]
    assert list(result.experts) == ["x + y + z"]
    with pytest.raises(AnalysisError, match=r"no category is weakly correlated under tau=0 .*raise --tau"):
        analyze(table, tau=0.0)
    with pytest.raises(AnalysisError, match="unknown grouping"):
        analyze(table, grouping="kmeans")
    with pytest.raises(AnalysisError, match="unknown category 'w'"):
        analyze(table, categories=["x", "w"])
