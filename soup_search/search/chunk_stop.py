"""The pruning rule as a scorer applies it between two chunks of a trial's dev split.

A trial reports a chunk to Tune only when Tune's scheduler could stop it there: when it is
:func:`~soup_search.search.pruning.clearly_worse` than the best complete trial logged (every
trial logs before it reports, so Tune never knows a better one). The scorer checks that itself,
after each chunk, and hands the chunks back only then; the trial reports them. So a trial that is
not clearly worse costs one scorer call, not one per chunk, and loses no chance to be pruned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ray

from soup_search.scoring.chunks import running_result
from soup_search.scoring.protocol import ScoreResult
from soup_search.search.pruning import clearly_worse, optimistic_score


def upper_score(so_far: ScoreResult, fraction: float, weights: Mapping[str, float] | None) -> float:
    """The optimistic full dev score of a trial whose chunks so far (``fraction`` of them) say ``so_far``."""
    return optimistic_score(so_far.per_category, so_far.counts, fraction, weights)


@dataclass(frozen=True)
class StopWhenClearlyWorse:
    """Stop after a chunk once the trial is clearly worse than the best complete trial of
    ``stage`` in the run store (asked of the store while the chunk is scored)."""

    store: object  # RunStore actor handle
    stage: str
    chunks: int
    weights: Mapping[str, float] | None = None

    def ask(self):
        return self.store.best_complete.remote(self.stage)

    def says_stop(self, parts: Sequence[ScoreResult], asked) -> bool:
        upper = upper_score(running_result(parts), len(parts) / self.chunks, self.weights)
        return clearly_worse(upper, ray.get(asked))
