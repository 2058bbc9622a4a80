"""The pruning rule as a scorer applies it between two chunks of a trial's dev split.

A trial reports a chunk to Tune only when Tune's scheduler could stop it there: when it
:func:`~soup_search.search.pruning.falls_behind` the best complete trial logged. The scorer
checks that itself, after each chunk, and hands the chunks back only then; the trial reports
them. So a trial that does not fall behind costs one scorer call, not one per chunk.

The bar is the best complete trial logged when the trial started, with its answers (it comes
with the trial's cache lookup, :meth:`~soup_search.engine.run_store.RunStore.before_trial`), so
the scorer makes no round trip while it scores. Every trial logs before it reports, so Tune's
scheduler learns each such value right after the store does; a trial handed back that the
scheduler does not stop (it had not learnt the value yet) scores on from where it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from soup_search.scoring.chunks import running_result
from soup_search.scoring.protocol import ScoreResult
from soup_search.search.pruning import Bar, falls_behind, optimistic_score, paired_optimistic_score


def upper_score(so_far: ScoreResult, chunks_scored: int, chunks: int, weights: Mapping[str, float] | None,
                bar: Bar | None = None) -> float:
    """The optimistic full dev score of a trial whose first ``chunks_scored`` chunks say ``so_far``:
    paired with the bar's answers where they are known, unpaired otherwise."""
    if bar is not None and bar.correct:
        return paired_optimistic_score(so_far.correct, bar, chunks_scored, chunks, weights)
    return optimistic_score(so_far.per_category, so_far.counts, chunks_scored / chunks, weights)


@dataclass(frozen=True)
class StopWhenBehind:
    """Stop after a chunk once the trial falls behind ``bar``, the best complete trial logged when
    it started (None: no trial is complete yet, so never stop)."""

    bar: Bar | None
    chunks: int
    weights: Mapping[str, float] | None = None

    def says_stop(self, parts: Sequence[ScoreResult]) -> bool:
        if self.bar is None:
            return False
        upper = upper_score(running_result(parts), len(parts), self.chunks, self.weights, self.bar)
        return falls_behind(upper, self.bar.value)
