"""A scorer scores a split's chunks in one call and hands them back early only where its stop rule says."""

from __future__ import annotations

import pytest

from soup_search.scoring.chunks import chunk_examples, join_chunks
from soup_search.scoring.protocol import ObjectiveSpec, WeightsNotLoaded
from soup_search.scoring.worker import ScorerWorker
from tests.scoring.test_chunks import EXAMPLES, scored

SPEC = ObjectiveSpec("toy", {})


class Split:
    @staticmethod
    def examples(split, held_out=False):
        return EXAMPLES


class ScoreByOracle:
    def __init__(self):
        self.scored: list[list[str]] = []

    def score_examples(self, objective, examples):
        self.scored.append([e.prompt for e in examples])
        return scored(examples)


class StopAfter:
    """Says stop once ``n`` chunks are scored; records after how many chunks it was asked."""

    def __init__(self, n: int):
        self.n, self.seen = n, []

    def says_stop(self, parts):
        self.seen.append(len(parts))
        return len(parts) >= self.n


def worker(load_id: str | None = "w1") -> ScorerWorker:
    w = ScorerWorker.__new__(ScorerWorker)
    w.scorer, w.loaded, w.calls = ScoreByOracle(), load_id, 0
    w._objectives = {SPEC.fingerprint(): Split()}
    return w


def test_every_chunk_in_one_call_without_a_stop():
    w = worker()
    parts = w.score_chunks(SPEC, "dev", 4, "w1", [], None)
    assert len(parts) == 4 and w.scorer.scored == [[e.prompt for e in chunk_examples(EXAMPLES, j, 4)] for j in range(4)]
    assert join_chunks(parts).correct == scored(EXAMPLES).correct


def test_a_stop_hands_back_early_and_a_second_call_goes_on_from_there():
    w, stop = worker(), StopAfter(2)
    first = w.score_chunks(SPEC, "dev", 4, "w1", [], stop)
    assert len(first) == 2 and stop.seen == [1, 2]  # judged after each chunk
    rest = w.score_chunks(SPEC, "dev", 4, "w1", first, stop)
    # the rule sees every chunk so far; the last chunk is never judged (nothing is left to save)
    assert len(rest) == 1 and stop.seen == [1, 2, 3]
    last = w.score_chunks(SPEC, "dev", 4, "w1", first + rest, stop)
    assert len(last) == 1 and stop.seen == [1, 2, 3]
    assert join_chunks(first + rest + last).correct == scored(EXAMPLES).correct


def test_other_weights_are_never_scored():
    w = worker(load_id=None)  # a restarted scorer holds its template's weights
    with pytest.raises(WeightsNotLoaded):
        w.score_chunks(SPEC, "dev", 4, "w1", [], None)
    assert w.scorer.scored == []
