"""Paired comparisons of two soups on the same held-out examples: the difference of the
objective, its 95% bootstrap confidence interval, and a paired test's p-value (scipy).

The objective is the (category-weighted) mean of per-category accuracies, so both the
bootstrap and the test respect categories:

- the bootstrap resamples examples *within* each category (stratified): each category's
  per-example differences (1, 0 or -1) are one sample to ``scipy.stats.bootstrap``, which
  resamples every sample on its own; pairing is kept because each value is one example's
  difference;
- the test is a paired permutation test (``scipy.stats.permutation_test`` with
  ``permutation_type="samples"``): under the null the two soups' answers to an example are
  exchangeable, so each pair is swapped or not; it is exact when there are few enough
  discordant pairs to enumerate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

#: resamples of the bootstrap and the permutation test
N_RESAMPLES = 9999
CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedDelta:
    """``delta`` = objective(a) − objective(b) on the same examples, with its CI and p-value."""

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int

    @property
    def significant(self) -> bool:
        """The CI excludes 0 (at the 95% level)."""
        return self.ci_low > 0 or self.ci_high < 0

    def interval(self) -> str:
        """``+0.0310 [+0.0120, +0.0500]``: the difference and its 95% CI, as every table shows it."""
        return f"{self.delta:+.4f} [{self.ci_low:+.4f}, {self.ci_high:+.4f}]"

    def to_json(self) -> dict:
        return asdict(self)


def _groups(categories: Sequence[str], weights: Mapping[str, float] | None):
    cats = list(dict.fromkeys(categories))
    w = np.array([float((weights or {}).get(c, 1.0)) for c in cats])
    return cats, w / w.sum()


def objective_of(correct: Sequence[float], categories: Sequence[str],
                 weights: Mapping[str, float] | None = None) -> float:
    """The objective of per-example correctness: the weighted mean of per-category accuracy."""
    x, labels = np.asarray(correct, dtype=float), np.asarray(categories)
    cats, w = _groups(categories, weights)
    return float(sum(wi * x[labels == c].mean() for c, wi in zip(cats, w)))


def example_bits(correct: Mapping[str, str], categories: Sequence[str]) -> tuple[list[int], list[str]]:
    """Per-example correctness stored as one "0"/"1" string per category, flattened in
    ``categories`` order: (the bits, each example's category)."""
    values: list[int] = []
    labels: list[str] = []
    for c in categories:
        values += [int(b) for b in correct[c]]
        labels += [c] * len(correct[c])
    return values, labels


def paired_delta(a: Sequence[float], b: Sequence[float], categories: Sequence[str],
                 weights: Mapping[str, float] | None = None, seed: int = 0) -> PairedDelta:
    """Compare soup ``a`` with soup ``b``: per-example correctness (0/1) of both on the same
    examples, in the same order, with each example's category."""
    a, b, labels = np.asarray(a, dtype=float), np.asarray(b, dtype=float), np.asarray(categories)
    if not (len(a) == len(b) == len(labels)) or len(a) == 0:
        raise ValueError(f"need one correctness value of each soup per example, got {len(a)}, {len(b)}, {len(labels)}")
    cats, w = _groups(categories, weights)
    diffs = [a[labels == c] - b[labels == c] for c in cats]
    delta = float(sum(wi * d.mean() for wi, d in zip(w, diffs)))
    rng = np.random.default_rng(seed)

    def weighted_mean_diff(*samples, axis=-1):
        return sum(wi * np.mean(s, axis=axis) for wi, s in zip(w, samples))

    if all(np.all(d == d[0]) for d in diffs):  # no variation: the bootstrap distribution is a point
        low = high = delta
    else:
        ci = stats.bootstrap(diffs, weighted_mean_diff, n_resamples=N_RESAMPLES, vectorized=True,
                             confidence_level=CONFIDENCE, method="percentile", rng=rng).confidence_interval
        low, high = float(ci.low), float(ci.high)
    discordant = a != b
    if discordant.sum() < 2:  # no or one discordant pair: swapping it gives ±d, as extreme as itself
        p = 1.0
    else:
        # only discordant pairs change under a swap; their weights per example keep the objective's scale
        per_example = np.array([dict(zip(cats, w))[c] / (labels == c).sum() for c in labels])[discordant]

        def weighted_sum_diff(x, y, axis=-1):
            return np.sum(per_example * (x - y), axis=axis)

        p = float(stats.permutation_test((a[discordant], b[discordant]), weighted_sum_diff, vectorized=True,
                                         permutation_type="samples", n_resamples=N_RESAMPLES, rng=rng).pvalue)
    return PairedDelta(delta=delta, ci_low=low, ci_high=high, p_value=min(p, 1.0), n=len(a))
