"""The SoCE analysis in one call: correlation → weak categories (or clusters) → experts.

Default τ = 0.5. The SoCE paper (arXiv 2511.13254) keeps categories with |ρ| < τ to at
least one other category but the text we could consult states no single numeric τ; 0.5
is the usual line below "moderate" correlation. On both BFCL v3 snapshots it makes each
of Live Acc, Multi Turn Acc, Relevance Detection and Irrelevance Detection weak (their
smallest |ρ| to another of the four is 0.11-0.36), as the paper's BFCL soups expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from soup_search.analysis.correlation import (
    check_tau,
    cluster_categories,
    correlation_matrix,
    weak_categories,
)
from soup_search.analysis.experts import check_candidates, group_label, pick_experts
from soup_search.analysis.table import unknown_names_error
from soup_search.config import DEFAULT_TAU, DEFAULT_TOP_K
from soup_search.errors import AnalysisError

GROUPINGS = ("weak", "cluster")


@dataclass(frozen=True, eq=False)
class Analysis:
    """What the search needs from a score table. ``experts``/``alternates`` are keyed by group label."""

    models: list[str]
    categories: list[str]
    correlation: pd.DataFrame
    weak_categories: list[str]
    clusters: list[list[str]]
    groups: dict[str, list[str]]
    experts: dict[str, str]
    alternates: dict[str, list[str]]
    expert_scores: dict[str, float]
    candidates: list[str]
    method: str
    tau: float
    top_k: int
    grouping: str
    dropped_models: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        corr = {a: {b: float(self.correlation.at[a, b]) for b in self.categories} for a in self.categories}
        return {
            "models": list(self.models),
            "categories": list(self.categories),
            "correlation": corr,
            "weak_categories": list(self.weak_categories),
            "clusters": [list(c) for c in self.clusters],
            "groups": {k: list(v) for k, v in self.groups.items()},
            "experts": dict(self.experts),
            "alternates": {k: list(v) for k, v in self.alternates.items()},
            "expert_scores": dict(self.expert_scores),
            "candidates": list(self.candidates),
            "method": self.method,
            "tau": self.tau,
            "top_k": self.top_k,
            "grouping": self.grouping,
            "dropped_models": list(self.dropped_models),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Analysis:
        cats = list(data["categories"])
        corr = pd.DataFrame([[data["correlation"][a][b] for b in cats] for a in cats], index=cats, columns=cats)
        return cls(
            models=list(data["models"]), categories=cats, correlation=corr,
            weak_categories=list(data["weak_categories"]), clusters=[list(c) for c in data["clusters"]],
            groups={k: list(v) for k, v in data["groups"].items()}, experts=dict(data["experts"]),
            alternates={k: list(v) for k, v in data["alternates"].items()},
            expert_scores={k: float(v) for k, v in data["expert_scores"].items()},
            candidates=list(data["candidates"]), method=data["method"], tau=float(data["tau"]),
            top_k=int(data["top_k"]), grouping=data["grouping"],
            dropped_models=list(data.get("dropped_models", [])),
        )


def _no_weak_error(corr: pd.DataFrame, tau: float) -> AnalysisError:
    absolute = corr.abs()
    pairs = [(absolute.iat[i, j], a, b) for i, a in enumerate(corr.columns)
             for j, b in enumerate(corr.columns) if i < j]
    rho, a, b = min(pairs)
    return AnalysisError(
        f"no category is weakly correlated under tau={tau:g} (the smallest |ρ| is {rho:.3f}, "
        f"between {a!r} and {b!r}); raise --tau above {rho:.3f} or use --grouping cluster"
    )


def analyze(table: pd.DataFrame, categories: Sequence[str] | None = None,
            candidates: Sequence[str] | None = None, method: str = "pearson",
            tau: float = DEFAULT_TAU, top_k: int = DEFAULT_TOP_K, grouping: str = "weak") -> Analysis:
    """Run SoCE's analysis on a models × categories table.

    ``categories`` restricts the table's columns; correlation uses every model of the
    table, ``candidates`` only restricts who can be an expert. ``grouping="weak"`` gives
    one expert per weak category (the paper); ``"cluster"`` one per cluster of categories,
    clusters cut where the average |ρ| falls below ``tau``.
    """
    tau = check_tau(tau)
    dropped = list(table.attrs.get("dropped_models", []))
    if grouping not in GROUPINGS:
        raise AnalysisError(f"unknown grouping {grouping!r}; use one of {', '.join(GROUPINGS)}")
    if categories is not None:
        cats = list(categories)
        unknown = [c for c in cats if c not in table.columns]
        if unknown:
            raise unknown_names_error("category", unknown, list(table.columns))
        table = table[cats]
    candidates = check_candidates(table, candidates)
    corr = correlation_matrix(table, method)
    weak = weak_categories(corr, tau)
    clusters = cluster_categories(corr, threshold=1.0 - tau)
    if grouping == "weak":
        if not weak:
            raise _no_weak_error(corr, tau)
        group_list = [[c] for c in weak]
    else:
        group_list = clusters
    experts, alternates = pick_experts(table, group_list, candidates, top_k=top_k)
    groups = {group_label(g): list(g) for g in group_list}
    scores = {label: float(table.loc[experts[label], cats].mean()) for label, cats in groups.items()}
    return Analysis(
        models=list(table.index), categories=list(table.columns), correlation=corr,
        weak_categories=weak, clusters=clusters, groups=groups, experts=experts,
        alternates=alternates, expert_scores=scores, candidates=candidates, method=method, tau=tau,
        top_k=top_k, grouping=grouping, dropped_models=dropped,
    )
