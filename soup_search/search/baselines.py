"""The points every search evaluates first.

A SoCE space (:class:`SearchSpace`): the uniform soup of the experts, then each expert alone. A
space of given models (:class:`InterpolationSpace`, :class:`TaskVectorSpace`): its own baselines
(λ = 0, 0.5, 1; α = 0, each vector at 1, all at 1).
"""

from __future__ import annotations

from collections.abc import Sequence

from soup_search.search.grid import simplex_grid
from soup_search.search.interpolation_space import InterpolationSpace
from soup_search.search.space import LAMBDA, SearchSpace
from soup_search.search.task_vector_space import TaskVectorSpace

#: every space a search can run over
Space = SearchSpace | InterpolationSpace | TaskVectorSpace


def soup_key(space: Space, params: dict) -> tuple:
    """What makes two params the same soup: the non-zero (module, model, weight) triples, and the
    searched ``lambda`` of a task-vector method."""
    key = tuple(sorted((module, model, round(w, 9)) for module, per in space.soup(params).items()
                       for model, w in per.items() if w != 0))
    searched_lambda = isinstance(space, SearchSpace) and space.lambda_range is not None
    return key + (((LAMBDA, round(float(params[LAMBDA]), 9)),) if searched_lambda else ())


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


def starting_points(space: Space, grid: Sequence[dict] = ()) -> list[dict]:
    """The baselines of any space, then the ``grid`` points (params), each soup once."""
    if isinstance(space, SearchSpace):
        return distinct_points(space, [*baseline_points(space), *grid])
    return distinct_points(space, [*(params for _, params in space.baselines()), *grid])


def grid_points(space: Space) -> list[dict]:
    """The params of a space's exhaustive grid: the paper's simplex grid, or λ / α on a grid."""
    if isinstance(space, SearchSpace):
        return [space.params_for(list(w)) for w in simplex_grid(len(space.groups))]
    return space.grid_points()


def distinct_points(space: Space, points: list[dict], taken: list[dict] = ()) -> list[dict]:
    """``points`` in order, without repeated soups or soups that ``taken`` already holds."""
    seen, out = {soup_key(space, p) for p in taken}, []
    for p in points:
        key = soup_key(space, p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
