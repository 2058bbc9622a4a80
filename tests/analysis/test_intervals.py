"""95% intervals of a merge's scores: Wilson for accuracies (scipy's), Kish's count for the weighted mean."""

from __future__ import annotations

import pytest
from scipy import stats

from soup_search.analysis.intervals import accuracy_interval, mean_accuracy_interval, mean_interval, wilson_interval


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (57, 320)])
def test_wilson_interval_is_scipys(k, n):
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert wilson_interval(k / n, n) == pytest.approx((ci.low, ci.high))
    assert accuracy_interval(k, n) == pytest.approx((ci.low, ci.high))


def test_the_mean_of_equal_categories_gets_the_pooled_interval():
    """Equal counts and weights: the mean is the pooled k/n and gets its binomial interval."""
    ci = mean_accuracy_interval({"a": 0.25, "b": 0.75}, {"a": 40, "b": 40})
    assert ci == pytest.approx(accuracy_interval(40, 80))


def test_a_weighted_mean_gets_kishs_effective_count():
    """Weights 3:1 on 40 + 40 examples: n_eff = 1 / (0.75**2 / 40 + 0.25**2 / 40) = 64."""
    mean = 0.75 * 0.5 + 0.25 * 0.9
    ci = mean_accuracy_interval({"a": 0.5, "b": 0.9}, {"a": 40, "b": 40}, {"a": 3.0, "b": 1.0})
    assert ci == pytest.approx(wilson_interval(mean, 64.0))
    assert ci[0] < mean < ci[1]
    assert ci[1] - ci[0] > accuracy_interval(56, 80)[1] - accuracy_interval(56, 80)[0]  # wider than pooled


def test_mean_interval_is_students_t():
    values = [1, 2, 2, 3, 7, 4]
    sem = stats.sem(values)
    expected = stats.t.interval(0.95, df=5, loc=sum(values) / 6, scale=sem)
    assert mean_interval(values) == pytest.approx(expected)
    assert mean_interval([3, 3, 3]) == (3.0, 3.0) and mean_interval([5]) == (5.0, 5.0)
