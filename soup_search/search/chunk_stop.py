"""The pruning rule as a scorer applies it between two chunks of a trial's dev split.

A trial reports a chunk to Tune only when Tune's scheduler could stop it there: when it is
:func:`~soup_search.search.pruning.clearly_worse` than the best complete trial logged. The
scorer checks that itself, after each chunk, and hands the chunks back only then; the trial
reports them. So a trial that is not clearly worse costs one scorer call, not one per chunk.

The bar is the best complete value logged when the trial started (it comes with the trial's
cache lookup, :meth:`~soup_search.engine.run_store.RunStore.before_trial`), so the scorer
makes no round trip while it scores. Every trial logs before it reports, so Tune's scheduler
learns each such value right after the store does; a trial handed back that the scheduler does
not stop (it had not learnt the value yet) scores on from where it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from soup_search.scoring.chunks import running_result
from soup_search.scoring.protocol import ScoreResult
from soup_search.search.pruning import clearly_worse, optimistic_score


def upper_score(so_far: ScoreResult, fraction: float, weights: Mapping[str, float] | None) -> float:
    """The optimistic full dev score of a trial whose chunks so far (``fraction`` of them) say ``so_far``."""
    return optimistic_score(so_far.per_category, so_far.counts, fraction, weights)


@dataclass(frozen=True)
class StopWhenClearlyWorse:
    """Stop after a chunk once the trial is clearly worse than ``best_complete``, the best complete
    value logged when it started (None: no trial is complete yet, so never stop)."""

    best_complete: float | None
    chunks: int
    weights: Mapping[str, float] | None = None

    def says_stop(self, parts: Sequence[ScoreResult]) -> bool:
        upper = upper_score(running_result(parts), len(parts) / self.chunks, self.weights)
        return clearly_worse(upper, self.best_complete)
