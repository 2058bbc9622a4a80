"""The merge methods by name: configured instances, as in ``mergekit/merge_methods/registry.py``."""

from __future__ import annotations

from soup_search.errors import MergeError
from soup_search.merge.fda import fda
from soup_search.merge.interpolate import interpolate
from soup_search.merge.linear import linear
from soup_search.merge.method import MergeMethod
from soup_search.merge.task_arithmetic import task_arithmetic
from soup_search.merge.ties import ties
from soup_search.merge.tsv import tsv
from soup_search.merge.wudi import wudi

METHODS: dict[str, MergeMethod] = {}


def register(method: MergeMethod) -> None:
    """Make a configured method available by name; names are unique."""
    if method.name in METHODS:
        raise ValueError(f"merge method {method.name!r} is already registered")
    METHODS[method.name] = method


def get_method(name: str) -> MergeMethod:
    try:
        return METHODS[name]
    except KeyError:
        raise MergeError(f"unknown merge method {name!r}; use one of: {', '.join(sorted(METHODS))}") from None


for _method in (linear, task_arithmetic, ties, interpolate, tsv, wudi, fda):
    register(_method)
del _method
