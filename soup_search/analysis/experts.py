"""Pick the expert model of each category group (a weak category or a cluster).

A group is scored by the mean of its categories, so a weak category (a group of one) is
scored by that category alone. Its label is the category name for a group of one and the
names joined with ``" + "`` for a cluster. Ties are broken by the candidate's mean over
all categories of the table (the categories the analysis was given), then by model name.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from soup_search.analysis.table import unknown_names_error
from soup_search.errors import AnalysisError

GROUP_JOIN = " + "


def group_label(group: Sequence[str]) -> str:
    return GROUP_JOIN.join(group)


def check_candidates(table: pd.DataFrame, candidates: Sequence[str] | None) -> list[str]:
    """The candidate models in table order (all models when ``None``); unknown names raise."""
    models = list(table.index)
    if candidates is None:
        return models
    wanted = [c.strip() for c in candidates if c.strip()]
    if not wanted:
        raise AnalysisError("the candidate list is empty; name at least one model or leave --candidates out")
    unknown = [c for c in wanted if c not in models]
    if unknown:
        raise unknown_names_error("model", unknown, models)
    chosen = set(wanted)
    return [m for m in models if m in chosen]


def rank_candidates(table: pd.DataFrame, group: Sequence[str], candidates: Sequence[str]) -> list[str]:
    """Candidates best first on the mean of ``group``; ties by overall mean, then name."""
    unknown = [c for c in group if c not in table.columns]
    if unknown:
        raise unknown_names_error("category", unknown, list(table.columns))
    sub = table.loc[list(candidates)]
    on_group = sub[list(group)].mean(axis=1)
    overall = sub.mean(axis=1)
    # round so that means equal up to float noise count as ties
    return sorted(candidates, key=lambda m: (-round(float(on_group[m]), 9), -round(float(overall[m]), 9), m))


def pick_experts(table: pd.DataFrame, groups: Sequence[Sequence[str] | str],
                 candidates: Sequence[str] | None = None, *,
                 top_k: int) -> tuple[dict[str, str], dict[str, list[str]]]:
    """For each group, the best candidate (expert) and the top ``top_k`` candidates (expert first).

    ``candidates`` restricts only who can be chosen; the caller computes correlation on all
    models. A plain string in ``groups`` is a group of one category.
    """
    if not isinstance(top_k, int) or top_k < 1:
        raise AnalysisError(f"top_k must be a positive integer, got {top_k!r}; pass e.g. --top-k 3")
    candidates = check_candidates(table, candidates)
    experts: dict[str, str] = {}
    alternates: dict[str, list[str]] = {}
    for group in groups:
        cats = [group] if isinstance(group, str) else list(group)
        if not cats:
            raise AnalysisError("an empty category group cannot have an expert")
        ranked = rank_candidates(table, cats, candidates)
        label = group_label(cats)
        experts[label] = ranked[0]
        alternates[label] = ranked[:top_k]
    return experts, alternates
