"""Test accuracy of a model, and of a recurrent model at each number of recurrences, with 95% CIs.

Accuracy is pooled over the test examples of every category (the toy objective has the same
count in each, so it equals the mean over categories); its interval is the binomial (Wilson)
95% interval that every report of the project gives (:mod:`soup_search.analysis.intervals`).
Two models are compared on the same examples by the paired difference of
:mod:`soup_search.analysis.paired` (stratified bootstrap CI, permutation p). The test split is
read with ``held_out=True``: this is a final report, never part of a search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from soup_search.analysis.intervals import accuracy_interval
from soup_search.analysis.paired import PairedDelta, example_bits, paired_delta
from soup_search.scoring.generation import evaluate
from soup_search.scoring.protocol import ScoreResult


@dataclass(frozen=True)
class Accuracy:
    """Correct answers out of ``n`` test examples, per category too, with the binomial 95% CI;
    ``bits`` keeps each example's correctness ("0"/"1" per category) for paired comparisons."""

    correct: int
    n: int
    per_category: dict[str, float]
    bits: dict[str, str]

    @classmethod
    def of(cls, result: ScoreResult) -> Accuracy:
        correct = sum(bits.count("1") for bits in result.correct.values())
        return cls(correct=correct, n=result.n, per_category=dict(result.per_category), bits=dict(result.correct))

    @property
    def value(self) -> float:
        return self.correct / self.n

    @property
    def ci(self) -> tuple[float, float]:
        return accuracy_interval(self.correct, self.n)

    def minus(self, other: Accuracy) -> PairedDelta:
        """This model's accuracy minus ``other``'s on the same test examples, with its paired 95% CI."""
        categories = list(self.bits)
        mine, labels = example_bits(self.bits, categories)
        theirs, _ = example_bits(other.bits, categories)
        return paired_delta(mine, theirs, labels)

    def to_json(self) -> dict:
        low, high = self.ci
        return {"accuracy": round(self.value, 5), "ci95": [round(low, 5), round(high, 5)],
                "correct": self.correct, "n": self.n,
                "per_category": {c: round(v, 4) for c, v in self.per_category.items()}}


def held_out_accuracy(model, tokenizer, objective, batch_size: int = 256) -> Accuracy:
    """Greedy test-split accuracy of ``model`` (the held-out report's read of the test split)."""
    return Accuracy.of(evaluate(model, tokenizer, objective, "test", held_out=True, batch_size=batch_size))


def accuracy_by_recurrence(model, tokenizer, objective, recurrences: Sequence[int],
                           batch_size: int = 256) -> dict[int, Accuracy]:
    """Test accuracy of a recurrent model run with each number of ``recurrences``."""
    default = model.config.num_recurrences
    try:
        out = {}
        for r in recurrences:
            model.config.num_recurrences = r
            out[r] = held_out_accuracy(model, tokenizer, objective, batch_size)
        return out
    finally:
        model.config.num_recurrences = default
