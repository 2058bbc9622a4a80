"""95% confidence intervals of one merge's dev scores: its accuracies (binomial) and its answer length.

- A category's accuracy ``k / n`` gets the Wilson score interval (``scipy.stats.binomtest``).
- The mean accuracy is the category-weighted mean of per-category accuracies, not the pooled
  ``k / n``; it gets the Wilson interval with Kish's effective sample size
  ``n_eff = 1 / sum(w_c^2 / n_c)`` (``w`` normalised to sum to 1). When every category has as
  many examples and the same weight this is the pooled count and the pooled interval.
- The mean number of generated tokens gets Student's t interval over the answers
  (``scipy.stats.t``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def wilson_interval(p: float, n: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` seen on ``n`` trials (``n`` may be an
    effective, non-integer count); ``(p, p)`` when ``n`` is 0."""
    if n <= 0:
        return (p, p)
    z = stats.norm.ppf(0.5 + confidence / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson interval of ``correct`` right answers out of ``n`` (scipy's binomial test)."""
    if n == 0:
        return (0.0, 0.0)
    ci = stats.binomtest(int(correct), int(n)).proportion_ci(confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def mean_accuracy_interval(per_category: Mapping[str, float], counts: Mapping[str, int],
                           weights: Mapping[str, float] | None = None,
                           confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The interval of the category-weighted mean accuracy (Wilson, Kish's effective count)."""
    cats = [c for c in per_category if counts.get(c)]
    if not cats:
        return (0.0, 0.0)
    w = np.array([float((weights or {}).get(c, 1.0)) for c in cats])
    w = w / w.sum()
    mean = float(np.dot(w, [per_category[c] for c in cats]))
    n_eff = 1.0 / float(np.sum(w**2 / np.array([counts[c] for c in cats], dtype=float)))
    return wilson_interval(mean, n_eff, confidence)


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t interval of the mean of ``values`` (the mean itself when they cannot vary)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (0.0, 0.0)
    mean = float(x.mean())
    sem = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
    if sem == 0.0:
        return (mean, mean)
    low, high = stats.t.interval(confidence, df=x.size - 1, loc=mean, scale=sem)
    return (float(low), float(high))
