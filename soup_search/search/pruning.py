"""When a trial scoring the dev split chunk by chunk is clearly worse: the rule, without Ray.

After ``j`` of ``n`` chunks a trial knows its accuracy ``p_c`` on ``m_c`` examples of each
category. Its full dev score is uncertain only through the examples not yet scored: the
category's full-split accuracy has variance ``(1 − j/n) · p̃_c (1 − p̃_c) / m_c`` around
``p_c`` (sampling without replacement; ``p̃_c = (x_c + 1) / (m_c + 2)`` so that 0 of 10 is
not certainty). The objective's (category-weighted) mean plus :data:`Z` of its standard
deviations is the trial's *optimistic* full dev score. (Chunks are stratified, so the first
already holds every category.)

A trial is **clearly worse** when that optimistic score is below the best full dev score of a
trial already completed. With ``Z = 2`` a candidate that would finish level with the best is
stopped at one chunk with a chance of about 2%; one that would beat it, less. Every trial is
judged by the same rule (the enqueued baselines too), trials before the first complete one are
never stopped, and a complete trial never is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: standard deviations of optimism before a trial counts as clearly worse
Z = 2.0


def optimistic_score(per_category: Mapping[str, float], counts: Mapping[str, int], fraction_scored: float,
                     weights: Mapping[str, float] | None = None, z: float = Z) -> float:
    """The upper end of a partly scored trial's full dev score (see the module doc): accuracy and
    example count per search category so far, and the share of the chunks scored (j/n)."""
    w = {c: float((weights or {}).get(c, 1.0)) for c in per_category}
    total = sum(w.values())
    mean, var = 0.0, 0.0
    for c, p in per_category.items():
        share = w[c] / total
        m = counts[c]
        p_smooth = (p * m + 1) / (m + 2)
        mean += share * p
        var += share ** 2 * max(1.0 - fraction_scored, 0.0) * p_smooth * (1 - p_smooth) / m
    return min(mean + z * math.sqrt(var), 1.0)


def clearly_worse(optimistic: float, best_complete: float | None) -> bool:
    """Stop a trial: even its optimistic full dev score is below the best complete trial's."""
    return best_complete is not None and optimistic < best_complete - 1e-12
