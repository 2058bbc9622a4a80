"""The regimes of a curve: transitions where a series jumps beyond its noise, flat or gradual stretches between."""

from __future__ import annotations

import numpy as np

from soup_search.analysis.regimes import find_regimes

X = [round(0.1 * i, 1) for i in range(11)]
NARROW = [0.05] * 11


def spans(regimes) -> list[tuple[float, float, str]]:
    return [(r.start, r.end, r.kind) for r in regimes]


def test_a_sigmoid_has_three_regimes_flat_transition_flat():
    y = 1 / (1 + np.exp(-(np.array(X) - 0.5) * 25))  # 0.00 ... 0.08 | 0.5 | 0.92 ... 1.00
    regimes = find_regimes(X, {"accuracy": (y, [0.1] * 11)})
    assert spans(regimes) == [(0.0, 0.4, "flat"), (0.4, 0.6, "transition"), (0.6, 1.0, "flat")]
    assert regimes[1].changes == ("accuracy",) and regimes[1].values["accuracy"][1] > 0.9


def test_a_straight_line_is_one_gradual_regime_and_noise_one_flat_regime():
    assert spans(find_regimes(X, {"accuracy": (X, NARROW)})) == [(0.0, 1.0, "gradual")]
    noise = [0.30, 0.32, 0.29, 0.31, 0.36, 0.30, 0.31, 0.29, 0.33, 0.30, 0.31]
    assert spans(find_regimes(X, {"accuracy": (noise, [0.1] * 11)})) == [(0.0, 1.0, "flat")]


def test_a_step_in_either_series_splits_the_grid_and_is_named():
    """Accuracy drifts; tokens jump between 0.7 and 0.8: the jump is the transition, found in tokens."""
    tokens = [3.0] * 8 + [9.0] * 3
    regimes = find_regimes(X, {"accuracy": (X, NARROW), "tokens": (tokens, [0.5] * 11)})
    assert spans(regimes) == [(0.0, 0.7, "gradual"), (0.7, 0.8, "transition"), (0.8, 1.0, "gradual")]
    assert regimes[1].changes == ("tokens",) and regimes[1].values["tokens"] == (3.0, 9.0)


def test_a_jump_within_the_noise_is_no_transition():
    y = [0.3] * 5 + [0.34] * 6
    assert spans(find_regimes(X, {"accuracy": (y, [0.1] * 11)})) == [(0.0, 1.0, "flat")]
    assert spans(find_regimes(X, {"accuracy": (y, [0.01] * 11)}))[1] == (0.4, 0.5, "transition")


def test_short_grids():
    assert spans(find_regimes([0.5], {"accuracy": ([0.3], [0.1])})) == [(0.5, 0.5, "flat")]
    assert spans(find_regimes([0.0, 1.0], {"accuracy": ([0.2, 0.9], [0.1, 0.1])})) == [(0.0, 1.0, "gradual")]
