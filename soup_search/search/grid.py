"""The paper's exhaustive grid: every weight in 0.1 … 0.9 (step 0.1), summing to 1, plus uniform."""

from __future__ import annotations

import itertools


def simplex_grid(k: int, step: float = 0.1, low: float = 0.1, high: float = 0.9) -> list[tuple[float, ...]]:
    """All k-tuples of weights on the grid that sum to 1, then the uniform point (if not on it)."""
    if k < 1:
        raise ValueError("k must be >= 1")
    units = round(1 / step)
    lo, hi = round(low / step), round(high / step)
    points = []
    if k == 1:
        points.append((1.0,))
    else:
        for combo in itertools.product(range(lo, hi + 1), repeat=k):
            if sum(combo) == units:
                points.append(tuple(round(c * step, 10) for c in combo))
    uniform = tuple([round(1 / k, 10)] * k)
    if uniform not in points:
        points.append(uniform)
    return points
