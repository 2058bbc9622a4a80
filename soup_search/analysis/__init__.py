"""SoCE analysis of a score table (models × categories): correlation, weak categories, experts.

Typical use::

    table = read_score_table("bfcl.csv", categories=["Live Acc", "Multi Turn Acc", "Relevance Detection"])
    result = analyze(table, candidates=["m1", "m2", "m3"])
    result.experts        # {"Live Acc": "m2", "Multi Turn Acc": "m1", "Relevance Detection": "m3"}
    result.to_json()      # what ``soup-search analyze`` writes as analysis.json
"""

from soup_search.analysis.correlation import (
    METHODS,
    category_linkage,
    check_table,
    cluster_categories,
    correlation_matrix,
    leaf_order,
    weak_categories,
)
from soup_search.analysis.experts import group_label, pick_experts, rank_candidates
from soup_search.analysis.plots import plot_dendrogram, plot_heatmap
from soup_search.analysis.soce import DEFAULT_TAU, GROUPINGS, Analysis, analyze
from soup_search.analysis.table import parse_cell, read_score_table

__all__ = [
    "DEFAULT_TAU",
    "GROUPINGS",
    "METHODS",
    "Analysis",
    "analyze",
    "category_linkage",
    "check_table",
    "cluster_categories",
    "correlation_matrix",
    "group_label",
    "leaf_order",
    "parse_cell",
    "pick_experts",
    "plot_dendrogram",
    "plot_heatmap",
    "rank_candidates",
    "read_score_table",
    "weak_categories",
]
