"""Category correlation across models, the paper's weak-category rule, and clustering.

All functions are pure: a DataFrame of models × categories in, plain values out.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from soup_search.errors import AnalysisError

METHODS = ("pearson", "spearman")


def check_table(table: pd.DataFrame) -> None:
    """Raise unless ``table`` has ≥ 3 models, ≥ 2 categories, finite values and no constant column."""
    if table.shape[0] < 3:
        raise AnalysisError(
            f"correlation needs at least 3 models, the table has {table.shape[0]}; add models to the score table"
        )
    if table.shape[1] < 2:
        raise AnalysisError(
            f"correlation needs at least 2 categories, got {list(table.columns)}; name more with --categories"
        )
    values = table.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        row, col = np.argwhere(~np.isfinite(values))[0]
        raise AnalysisError(
            f"score of model {table.index[row]!r} in category {table.columns[col]!r} is not a finite number"
        )
    for i, col in enumerate(table.columns):
        if np.ptp(values[:, i]) == 0:
            raise AnalysisError(
                f"category {col!r} has the same score {values[0, i]:g} for every model, so ρ is undefined; "
                "leave it out with --categories"
            )


def correlation_matrix(table: pd.DataFrame, method: str = "pearson") -> pd.DataFrame:
    """ρ between every pair of categories, computed across ALL models of ``table``."""
    if method not in METHODS:
        raise AnalysisError(f"unknown correlation method {method!r}; use one of {', '.join(METHODS)}")
    check_table(table)
    corr_fn = stats.pearsonr if method == "pearson" else stats.spearmanr
    cats = list(table.columns)
    out = np.eye(len(cats))
    for i in range(len(cats)):
        for j in range(i + 1, len(cats)):
            rho = float(corr_fn(table.iloc[:, i].to_numpy(float), table.iloc[:, j].to_numpy(float)).statistic)
            if math.isnan(rho):  # spearman of a column with ties only; check_table catches the rest
                raise AnalysisError(f"ρ between {cats[i]!r} and {cats[j]!r} is undefined; leave one out")
            out[i, j] = out[j, i] = rho
    return pd.DataFrame(out, index=pd.Index(cats, name="category"), columns=cats)


def check_tau(tau: float) -> float:
    if not (isinstance(tau, (int, float)) and 0.0 <= float(tau) <= 1.0):
        raise AnalysisError(f"tau must be within [0, 1], got {tau!r}; pass e.g. --tau 0.5")
    return float(tau)


def weak_categories(corr: pd.DataFrame, tau: float) -> list[str]:
    """The paper's rule: categories whose |ρ| is below ``tau`` with at least one other category.

    Returned in the order of ``corr``'s columns.
    """
    tau = check_tau(tau)
    absolute = corr.abs().to_numpy(dtype=float).copy()
    np.fill_diagonal(absolute, np.inf)
    return [c for c, row in zip(corr.columns, absolute) if (row < tau).any()]


def category_linkage(corr: pd.DataFrame) -> np.ndarray:
    """Average-linkage tree on the distance 1 − |ρ| (scipy's linkage matrix)."""
    distance = 1.0 - corr.abs().to_numpy(dtype=float)
    distance = np.clip((distance + distance.T) / 2.0, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    return hierarchy.linkage(squareform(distance, checks=False), method="average")


def leaf_order(corr: pd.DataFrame) -> list[str]:
    """Categories in dendrogram leaf order (similar categories next to each other)."""
    if len(corr.columns) < 2:
        return list(corr.columns)
    leaves = hierarchy.leaves_list(category_linkage(corr))
    return [corr.columns[i] for i in leaves]


def cluster_categories(corr: pd.DataFrame, n_clusters: int | None = None,
                       threshold: float | None = None) -> list[list[str]]:
    """Group categories by average-linkage clustering on 1 − |ρ|.

    Give ``n_clusters`` (cut into that many groups) or ``threshold`` (merge while the
    average distance 1 − |ρ| is at most ``threshold``, i.e. average |ρ| ≥ 1 − threshold);
    with neither, ``threshold=0.5``. Each cluster lists its categories in ``corr`` order;
    clusters are ordered by their first category.
    """
    cats = list(corr.columns)
    if n_clusters is not None and threshold is not None:
        raise AnalysisError("give n_clusters or threshold for clustering, not both")
    if len(cats) < 2:
        return [cats]
    tree = category_linkage(corr)
    if n_clusters is not None:
        if not 1 <= n_clusters <= len(cats):
            raise AnalysisError(f"n_clusters must be within 1..{len(cats)}, got {n_clusters}")
        labels = hierarchy.fcluster(tree, t=n_clusters, criterion="maxclust")
    else:
        t = 0.5 if threshold is None else float(threshold)
        if not 0.0 <= t <= 2.0:
            raise AnalysisError(f"cluster threshold must be within [0, 2] (a distance 1 − |ρ|), got {t}")
        labels = hierarchy.fcluster(tree, t=t, criterion="distance")
    groups: dict[int, list[str]] = {}
    for cat, label in zip(cats, labels):
        groups.setdefault(int(label), []).append(cat)
    return sorted(groups.values(), key=lambda g: cats.index(g[0]))
