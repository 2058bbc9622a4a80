"""``leaderboard``: category scores read directly from a leaderboard snapshot or ``scores.csv``.

This objective has no examples: it hands the SoCE analysis a ready table of
models × categories (e.g. the BFCL v3 leaderboard), so experts can be picked without
scoring anything. Reading rules (percent strings keep their 0-100 scale, which columns
count as categories, missing cells) are those of
:func:`soup_search.analysis.table.read_score_table`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from soup_search.analysis.table import read_score_table
from soup_search.errors import ObjectiveError


class LeaderboardObjective:
    """Scores per model and category from a CSV; ``scores()`` is the whole objective."""

    def __init__(self, path: str | os.PathLike, model_column: str = "Model",
                 categories: Sequence[str] | None = None, exclude: Sequence[str] | None = None,
                 name: str = "leaderboard", drop_missing: bool = False):
        self.name = name
        self.path = os.fspath(path)
        self.model_column = model_column
        # read once, now, so a bad file or category fails before any Ray work starts
        self._table = read_score_table(self.path, model_column=model_column, categories=categories,
                                       exclude=exclude, drop_missing=drop_missing)
        self.categories: tuple[str, ...] = tuple(self._table.columns)

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self._table.index)

    def scores(self) -> pd.DataFrame:
        """Index = model names, columns = categories, float values (a copy)."""
        return self._table.copy()

    def examples(self, split: str, categories=None, *, held_out: bool = False):
        raise ObjectiveError(
            f"the leaderboard objective gives scores directly; it has no examples "
            f"(use {self.name!r}.scores(), or an example-based objective such as 'toy' or 'jsonl' to score soups)"
        )

    def __repr__(self) -> str:
        return (f"LeaderboardObjective(path={self.path!r}, models={len(self._table)}, "
                f"categories={list(self.categories)!r})")
