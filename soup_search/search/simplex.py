"""Weights on the simplex from k − 1 free numbers in [0, 1], without scale redundancy.

Stick breaking: group i takes the share ``v_i`` of what the groups before it left, and the
last group takes the rest. With ``v_i = 1 − (1 − u_i)^(1/(k−i))`` (the inverse CDF of
Beta(1, k − i)), independent uniform ``u`` give weights uniform on the simplex, so a
sampler's uniform prior is the uninformative prior over soups. Every point of the simplex
has exactly one ``u`` (up to the usual ambiguity where a stick is already used up), and the
baselines map exactly: the uniform soup and each expert alone.
"""

from __future__ import annotations

from collections.abc import Sequence


def to_simplex(u: Sequence[float]) -> list[float]:
    """k − 1 numbers in [0, 1] → k non-negative weights summing to 1."""
    k = len(u) + 1
    weights, left = [], 1.0
    for i, ui in enumerate(u):
        v = 1.0 - (1.0 - min(max(float(ui), 0.0), 1.0)) ** (1.0 / (k - 1 - i))
        weights.append(left * v)
        left -= weights[-1]
    weights.append(max(left, 0.0))
    return weights


def from_simplex(weights: Sequence[float]) -> list[float]:
    """The inverse of :func:`to_simplex`: k weights (normalised here) → k − 1 numbers in [0, 1]."""
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    w = [x / total for x in weights]
    k, u, left = len(w), [], 1.0
    for i in range(k - 1):
        v = 1.0 if left <= 1e-15 else min(w[i] / left, 1.0)
        u.append(1.0 - (1.0 - v) ** (k - 1 - i))
        left -= w[i]
    return u
