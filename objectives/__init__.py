"""Benchmark objectives: categories, deterministic splits and scoring, found by name.

>>> from objectives import get_objective
>>> toy = get_objective("toy", seed=0)
>>> toy.categories[:2]
('add', 'sub')
"""

from __future__ import annotations

import importlib
from typing import Any

from objectives.base import SPLITS, Example, Objective
from objectives.scoring import SCORERS, exact_match, extract_number, numeric_match
from soup_search.errors import ObjectiveError

#: name -> "module:Class"; modules import lazily so one objective's dependencies never load another's
REGISTRY: dict[str, str] = {
    "toy": "objectives.toy:ToyObjective",
    "jsonl": "objectives.jsonl:JsonlObjective",
    "leaderboard": "objectives.leaderboard:LeaderboardObjective",
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
    "SCORERS",
    "SPLITS",
    "Example",
    "Objective",
    "exact_match",
    "extract_number",
    "get_objective",
    "numeric_match",
    "objective_class",
]
