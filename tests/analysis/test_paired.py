"""Paired CIs and p-values against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from soup_search.analysis.paired import objective_of, paired_delta


def test_identical_soups_differ_by_nothing():
    a = [1, 0, 1, 1, 0, 1]
    d = paired_delta(a, a, ["x"] * 3 + ["y"] * 3)
    assert (d.delta, d.ci_low, d.ci_high, d.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert not d.significant


def test_five_wins_and_no_loss_is_the_exact_sign_test():
    """5 discordant pairs, all for a: 2^5 = 32 equally likely swaps, two at least as extreme: p = 2/32."""
    a = [1, 1, 1, 1, 1, 1, 0]
    b = [0, 0, 0, 0, 0, 1, 0]
    d = paired_delta(a, b, ["x"] * 7)
    assert d.delta == pytest.approx(5 / 7)
    assert d.p_value == pytest.approx(2 / 32)


def test_one_discordant_pair_has_p_one():
    """Its two swaps give +d and -d, both as extreme as the observed: p = 2/2 (scipy refuses one sample)."""
    d = paired_delta([1, 1, 0, 1], [1, 1, 0, 0], ["x"] * 4)
    assert d.delta == pytest.approx(0.25) and d.p_value == 1.0


def test_delta_is_the_weighted_mean_of_category_deltas():
    cats = ["x"] * 4 + ["y"] * 2
    a = [1, 1, 1, 1, 0, 0]
    b = [1, 0, 0, 0, 1, 0]  # x: 1.0 vs 0.25 (+0.75); y: 0.0 vs 0.5 (-0.5)
    assert paired_delta(a, b, cats).delta == pytest.approx((0.75 - 0.5) / 2)
    assert paired_delta(a, b, cats, {"x": 3.0}).delta == pytest.approx((3 * 0.75 - 0.5) / 4)
    assert objective_of(a, cats, {"x": 3.0}) - objective_of(b, cats, {"x": 3.0}) == pytest.approx((3 * 0.75 - 0.5) / 4)


def test_a_clear_win_has_a_ci_above_zero_and_a_small_p():
    rng = np.random.default_rng(1)
    b = rng.random(400) < 0.5
    a = b | (rng.random(400) < 0.3)  # a fixes ~30% of b's errors and breaks nothing
    d = paired_delta(a, b, ["x", "y"] * 200)
    assert 0 < d.ci_low < d.delta < d.ci_high
    assert d.p_value < 0.001 and d.significant


def test_noise_has_a_ci_around_zero():
    rng = np.random.default_rng(2)
    a, b = rng.random(300) < 0.6, rng.random(300) < 0.6
    d = paired_delta(a, b, ["x"] * 300)
    assert d.ci_low < 0 < d.ci_high or abs(d.delta) < 0.08
    # the percentile CI of a mean difference of n pairs is about ±1.96·sd/√n
    sd = np.std(a.astype(float) - b.astype(float), ddof=1)
    assert d.ci_high - d.ci_low == pytest.approx(2 * 1.96 * sd / np.sqrt(300), rel=0.15)


def test_bad_lengths_are_refused():
    with pytest.raises(ValueError, match="one correctness value"):
        paired_delta([1, 0], [1], ["x", "x"])
