"""The points every search evaluates first: the uniform soup of the experts, then each expert alone."""

from __future__ import annotations

from collections.abc import Sequence

from soup_search.search.space import LAMBDA, SearchSpace


def soup_key(space: SearchSpace, params: dict) -> tuple:
    """What makes two params the same soup: the non-zero (module, model, weight) triples, and the
    searched ``lambda`` of a task-vector method."""
    key = tuple(sorted((module, model, round(w, 9)) for module, per in space.soup(params).items()
                       for model, w in per.items() if w > 0))
    return key + (((LAMBDA, round(float(params[LAMBDA]), 9)),) if space.lambda_range is not None else ())


def baseline_points(space: SearchSpace, grid_points: Sequence[Sequence[float]] = ()) -> list[dict]:
    """Uniform soup of the experts first, then each expert alone, then any grid points.

    Points that give the same soup (an expert chosen for two groups) are enqueued once.
    """
    k = len(space.groups)
    candidates = [space.params_for([1.0 / k] * k)]
    if k > 1:
        candidates += [space.params_for([1.0 if j == i else 0.0 for j in range(k)]) for i in range(k)]
    candidates += [space.params_for(list(w)) for w in grid_points]
    return distinct_points(space, candidates)


def distinct_points(space: SearchSpace, points: list[dict], taken: list[dict] = ()) -> list[dict]:
    """``points`` in order, without repeated soups or soups that ``taken`` already holds."""
    seen, out = {soup_key(space, p) for p in taken}, []
    for p in points:
        key = soup_key(space, p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
