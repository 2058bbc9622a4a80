"""Which categories the analysis can use: those asked for (or all), less the constant ones.

A category on which every candidate scores the same has no correlation (ρ is undefined)
and no expert; it is left out of the analysis but stays part of the objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from soup_search.errors import AnalysisError


@dataclass(frozen=True)
class InformativeCategories:
    kept: list[str]
    constant: list[str]


def informative_categories(frame: pd.DataFrame, wanted: Sequence[str] | None = None) -> InformativeCategories:
    """The categories of ``frame`` (or ``wanted``) that separate the candidates; at least 2."""
    cats = list(wanted) if wanted else list(frame.columns)
    unknown = [c for c in cats if c not in frame.columns]
    if unknown:
        raise AnalysisError(f"analysis.categories names unknown categories {unknown}; "
                            f"known categories: {list(frame.columns)}")
    constant = [c for c in cats if frame[c].nunique() <= 1]
    kept = [c for c in cats if c not in constant]
    if len(kept) < 2:
        why = f" (every candidate scores the same on {constant})" if constant else ""
        raise AnalysisError(f"only {len(kept)} of {len(cats)} categories separate the candidates{why}; "
                            "SoCE needs at least 2: use more dev examples, more categories or other candidates")
    return InformativeCategories(kept=kept, constant=constant)
