"""Benchmark objectives: categories, deterministic splits and scoring, found by name.

>>> from soup_search.objectives import get_objective
>>> toy = get_objective("toy", seed=0)
>>> toy.categories[:2]
('add', 'sub')
"""

from __future__ import annotations

import importlib
from typing import Any

from soup_search.objectives.base import SPLITS, Example, Objective
from soup_search.objectives.matching import MATCHERS, exact_match, extract_number, numeric_match
from soup_search.errors import ObjectiveError

#: name -> "module:Class"; modules import lazily so one objective's dependencies never load another's
REGISTRY: dict[str, str] = {
    "toy": "soup_search.objectives.toy:ToyObjective",
    "jsonl": "soup_search.objectives.jsonl:JsonlObjective",
    "leaderboard": "soup_search.objectives.leaderboard:LeaderboardObjective",
}


def objective_class(name: str) -> type:
    if name not in REGISTRY:
        raise ObjectiveError(f"unknown objective {name!r}; use one of: {', '.join(sorted(REGISTRY))}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_objective(name: str, /, **params: Any):
    """Build the objective registered as ``name`` with its parameters."""
    return objective_class(name)(**params)


__all__ = [
    "REGISTRY",
    "MATCHERS",
    "SPLITS",
    "Example",
    "Objective",
    "exact_match",
    "extract_number",
    "get_objective",
    "numeric_match",
    "objective_class",
]
