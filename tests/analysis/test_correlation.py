"""correlation_matrix, weak_categories, cluster_categories on small hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from soup_search.analysis import cluster_categories, correlation_matrix, leaf_order, weak_categories
from soup_search.errors import AnalysisError


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    base = rng.normal(size=12)
    other = rng.normal(size=12)
    data = {
        "a": base,
        "a2": base + 0.05 * rng.normal(size=12),  # nearly the same as a
        "b": other,
        "b2": -other + 0.05 * rng.normal(size=12),  # strongly anti-correlated with b
    }
    return pd.DataFrame(data, index=[f"m{i}" for i in range(12)])


def test_pearson_and_spearman_match_scipy(table):
    for method, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        corr = correlation_matrix(table, method)
        for a in table.columns:
            for b in table.columns:
                want = 1.0 if a == b else fn(table[a], table[b]).statistic
                assert corr.at[a, b] == pytest.approx(want, abs=1e-12)
    assert correlation_matrix(table, "spearman").at["a", "b"] != pytest.approx(
        correlation_matrix(table, "pearson").at["a", "b"], abs=1e-6)


def test_weak_rule_and_tau_bounds(table):
    corr = correlation_matrix(table)
    low = abs(corr.at["a", "b"])
    assert weak_categories(corr, 0.0) == []
    # every category has a partner from the other pair with |ρ| small
    assert weak_categories(corr, 0.9) == ["a", "a2", "b", "b2"]
    handmade = pd.DataFrame([[1, 0.9, 0.2], [0.9, 1, 0.6], [0.2, 0.6, 1]], index=list("xyz"), columns=list("xyz"))
    assert weak_categories(handmade, 0.5) == ["x", "z"]
    assert weak_categories(handmade, 0.61) == ["x", "y", "z"]
    assert low < 0.9
    for tau in (-0.1, 1.5, float("nan")):
        with pytest.raises(AnalysisError, match="tau must be within"):
            weak_categories(corr, tau)


def test_clusters_group_correlated_categories(table):
    corr = correlation_matrix(table)
    assert cluster_categories(corr, n_clusters=2) == [["a", "a2"], ["b", "b2"]]
    assert cluster_categories(corr, threshold=0.2) == [["a", "a2"], ["b", "b2"]]
    assert cluster_categories(corr, threshold=0.0) == [["a"], ["a2"], ["b"], ["b2"]]
    assert cluster_categories(corr, n_clusters=1) == [["a", "a2", "b", "b2"]]
    order = leaf_order(corr)
    assert abs(order.index("a") - order.index("a2")) == 1 and abs(order.index("b") - order.index("b2")) == 1


def test_bad_tables(table):
    with pytest.raises(AnalysisError, match="at least 3 models, the table has 2"):
        correlation_matrix(table.iloc[:2])
    const = table.assign(c=0.5)
    with pytest.raises(AnalysisError, match=r"category 'c' has the same score 0.5 .*ρ is undefined"):
        correlation_matrix(const)
    with pytest.raises(AnalysisError, match="unknown correlation method 'kendall'"):
        correlation_matrix(table, "kendall")
    with pytest.raises(AnalysisError, match="at least 2 categories"):
        correlation_matrix(table[["a"]])
