"""When a trial scoring the dev split chunk by chunk falls behind: the rule, without Ray.

After ``j`` of ``n`` chunks a trial knows its answers to ``m_c`` examples of each category
(``j/n`` of them; chunks are stratified, so the first already holds every category). Its
*optimistic* full dev score is its expected full score plus ``z`` standard deviations of what
the examples not yet scored may still change, and the trial **falls behind** when that is below
the best full dev score of a trial already completed (the bar).

**Paired, against the bar's own answers** (:func:`paired_optimistic_score`, used whenever the
bar's per-example answers are known). On the examples scored so far the trial gained ``+``
examples the bar got wrong and lost ``−`` the bar got right; the expected full score is the
bar's plus the objective's (category-weighted) mean of ``(+ − −)/m_c``, with variance
``(1 − j/n) · s²_c / m_c`` per category, ``s²_c`` the variance of one example's difference
(half an example of each kind added, so that no disagreement yet is not certainty). Two soups
of one pool agree on most examples, so this is far sharper than comparing two accuracies: a
trial that is behind on the same examples is behind. With :data:`RACE_Z` = 0.5 a trial goes on
while its chance of finishing above the bar is about 30% or more: a search looks for the best
soup, and a trial that will not beat the best soup found so far teaches the sampler little that
its first chunks did not.

**Unpaired** (:func:`optimistic_score`, when the bar's answers are not known: a run resumed from
its trial log): each category's full accuracy has variance ``(1 − j/n) · p̃_c (1 − p̃_c) / m_c``
around ``p_c`` (sampling without replacement; ``p̃_c = (x_c + 1) / (m_c + 2)``), and :data:`Z` =
2: only a clearly worse trial stops.

Every trial is judged by the same rule (the enqueued baselines too), trials before the first
complete one are never stopped, and a complete trial never is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

#: standard deviations of optimism when the bar's answers are not known (unpaired)
Z = 2.0
#: standard deviations of optimism when they are (paired): go on while the chance of beating the bar is ≳ 30%
RACE_Z = 0.5


@dataclass(frozen=True)
class Bar:
    """What a partly scored trial is measured against: the best complete trial's dev value and its
    answers (``correct``: per category, one bit per dev example in the split's order; None where
    they are not known)."""

    value: float
    correct: Mapping[str, str] | None = None


def optimistic_score(per_category: Mapping[str, float], counts: Mapping[str, int], fraction_scored: float,
                     weights: Mapping[str, float] | None = None, z: float = Z) -> float:
    """The upper end of a partly scored trial's full dev score, unpaired (see the module doc):
    accuracy and example count per search category so far, and the share of the chunks scored (j/n)."""
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


def bar_answers(bar_correct: Mapping[str, str], chunks_scored: int, chunks: int) -> dict[str, str]:
    """The bar's answers to the examples of the first ``chunks_scored`` chunks, in the order a trial
    holds its own (chunk by chunk; chunk ``i`` is every ``chunks``-th example from ``i``)."""
    return {c: "".join(bits[i::chunks] for i in range(chunks_scored)) for c, bits in bar_correct.items()}


def paired_optimistic_score(correct: Mapping[str, str], bar: Bar, chunks_scored: int, chunks: int,
                            weights: Mapping[str, float] | None = None, z: float = RACE_Z) -> float:
    """The upper end of a partly scored trial's full dev score, paired with the bar's answers on the
    same examples (see the module doc). ``correct``: the trial's answers so far, chunk by chunk."""
    theirs = bar_answers(bar.correct or {}, chunks_scored, chunks)
    if set(theirs) != set(correct) or any(len(theirs[c]) != len(b) for c, b in correct.items()):
        raise ValueError("the bar's answers are not to the trial's examples; pair only trials of one split")
    w = {c: float((weights or {}).get(c, 1.0)) for c in correct}
    total = sum(w.values())
    fraction = chunks_scored / chunks
    gain, var = 0.0, 0.0
    for c, mine in correct.items():
        share, m = w[c] / total, len(mine)
        plus = sum(a > b for a, b in zip(mine, theirs[c]))
        minus = sum(a < b for a, b in zip(mine, theirs[c]))
        p_plus, p_minus = (plus + 0.5) / (m + 1), (minus + 0.5) / (m + 1)
        gain += share * (plus - minus) / m
        var += share ** 2 * max(1.0 - fraction, 0.0) * (p_plus + p_minus - (p_plus - p_minus) ** 2) / m
    return min(bar.value + gain + z * math.sqrt(var), 1.0)


def falls_behind(optimistic: float, best_complete: float | None) -> bool:
    """Stop a trial: even its optimistic full dev score is below the best complete trial's."""
    return best_complete is not None and optimistic < best_complete - 1e-12
