"""The regimes of a merge curve: where, along the swept coefficient, behaviour holds and where it changes.

The rule, applied to each of a curve's series (for a merge curve: the mean accuracy, the mean
generated tokens and each category's accuracy, each with its points' 95% CIs) over the sorted grid
``x_0 < ... < x_{n-1}``:

1. **Abrupt steps.** A step ``x_i → x_{i+1}`` is abrupt when it is at least twice the series'
   average step: ``|y_{i+1} − y_i| ≥ 2 · Σ|Δy| / (n − 1)``. The steps of a straight line are never
   abrupt; the steep middle of a sigmoid is.
2. **Transitions.** A maximal run of abrupt steps is a transition when its net change is at least
   a third of the series' range (a noisy step on a gentle slope is not) and more than the median
   width of the series' 95% confidence intervals (more than its noise).
3. **Regimes.** The grid splits at the transitions of every series (merged where they overlap or
   touch): each transition is a *transition* regime, from the first point of its run to the last.
   A stretch between them is *flat* when every series stays within its noise there (its range
   at most the median CI width), else *gradual*. Neighbouring regimes share their boundary
   point, the change point.

So a curve that only drifts is one gradual regime and one that moves within its noise one flat
regime; the grid decides the resolution: a transition is located to within one grid step.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

#: a step is abrupt when it is at least this many times the series' average step
ABRUPT = 2.0
#: a run of abrupt steps is a transition when its net change is at least this share of the range
SHARE = 1 / 3


@dataclass(frozen=True)
class Regime:
    """``[start, end]`` of the swept coefficient; ``kind`` "flat", "gradual" or "transition";
    ``changes``: the series with a transition there (empty otherwise); ``values``: each series at
    ``start`` and at ``end``."""

    start: float
    end: float
    kind: str
    changes: tuple[str, ...] = ()
    values: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**asdict(self), "changes": list(self.changes),
                "values": {k: list(v) for k, v in self.values.items()}}


def transition_steps(values: Sequence[float], ci_widths: Sequence[float]) -> np.ndarray:
    """Which steps of one series lie in a transition (rules 1 and 2); one bool per step."""
    y = np.asarray(values, dtype=float)
    steps = np.diff(y)
    out = np.zeros(steps.size, dtype=bool)
    if steps.size == 0 or not np.any(steps):
        return out
    abrupt = np.abs(steps) >= ABRUPT * np.abs(steps).sum() / steps.size
    floor = max(SHARE * float(np.ptp(y)), float(np.median(ci_widths)))
    for flag, run in itertools.groupby(range(steps.size), key=lambda i: bool(abrupt[i])):
        run = list(run)
        if flag and abs(y[run[-1] + 1] - y[run[0]]) > floor:
            out[run] = True
    return out


def find_regimes(x: Sequence[float], series: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> list[Regime]:
    """The regimes over the grid ``x`` (increasing) of ``series``: name -> (values, CI widths)."""
    if len(x) < 2:
        return [Regime(float(x[0]), float(x[0]), "flat")] if len(x) else []
    moves = {name: transition_steps(v, w) for name, (v, w) in series.items()}
    changing = np.logical_or.reduce(list(moves.values())) if moves else np.zeros(len(x) - 1, dtype=bool)
    regimes = []
    for flag, run in itertools.groupby(range(len(x) - 1), key=lambda i: bool(changing[i])):
        steps = list(run)
        first, last = steps[0], steps[-1] + 1
        changes = tuple(name for name, m in moves.items() if m[steps].any()) if flag else ()
        values = {name: (float(v[first]), float(v[last])) for name, (v, _) in series.items()}
        moved = any(np.ptp(np.asarray(v, dtype=float)[first:last + 1]) > float(np.median(w))
                    for v, w in series.values())
        kind = "transition" if flag else "gradual" if moved else "flat"
        regimes.append(Regime(float(x[first]), float(x[last]), kind, changes, values))
    return regimes
