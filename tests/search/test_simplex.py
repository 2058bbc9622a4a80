"""The stick-breaking parameterisation: reachability, exact baselines, a uniform prior."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from soup_search.search.simplex import from_simplex, to_simplex


@pytest.mark.parametrize("k", [2, 3, 5])
def test_every_point_of_the_simplex_is_reached(k):
    rng = np.random.default_rng(k)
    for w in rng.dirichlet(np.ones(k), size=200):
        u = from_simplex(w)
        assert len(u) == k - 1 and all(0 <= x <= 1 for x in u)
        assert to_simplex(u) == pytest.approx(list(w), abs=1e-12)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_baselines_map_exactly(k):
    assert to_simplex(from_simplex([1.0] * k)) == pytest.approx([1 / k] * k, abs=1e-15)
    for j in range(k):
        alone = [1.0 if i == j else 0.0 for i in range(k)]
        assert to_simplex(from_simplex(alone)) == alone


def test_uniform_numbers_give_weights_uniform_on_the_simplex():
    rng = np.random.default_rng(0)
    k = 4
    w = np.array([to_simplex(u) for u in rng.random((4000, k - 1))])
    assert np.allclose(w.sum(axis=1), 1)
    # each marginal of the flat Dirichlet(1, ..., 1) is Beta(1, k - 1)
    for j in range(k):
        assert stats.kstest(w[:, j], stats.beta(1, k - 1).cdf).pvalue > 0.01


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        from_simplex([0.5, -0.1])
