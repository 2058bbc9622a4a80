"""A split in stratified chunks: every category's share in each chunk, and the chunks join back exactly."""

from __future__ import annotations

from soup_search.objectives.base import Example
from soup_search.scoring.chunks import chunk_examples, join_chunks, running_result
from soup_search.scoring.protocol import ScoreResult

EXAMPLES = [Example(f"{c}{i}", "x", c) for c, n in (("a", 10), ("b", 7), ("c", 3)) for i in range(n)]


class Oracle:
    """Right on every example whose prompt ends in an even digit."""

    @staticmethod
    def score_example(example, prediction):
        return 1.0 if int(prediction[-1]) % 2 == 0 else 0.0


def scored(examples) -> ScoreResult:
    """Each answer's token count is its prompt's number (a0 -> 0, b6 -> 6): each example's own."""
    return ScoreResult.of_answers(Oracle, examples, [ex.prompt for ex in examples], seconds=1.0,
                                  generated_tokens=[int(ex.prompt[1:]) for ex in examples])


def test_chunks_are_stratified_deterministic_and_cover_the_split():
    chunks = [chunk_examples(EXAMPLES, j, 4) for j in range(4)]
    assert [len([e for e in ch if e.category == "a"]) for ch in chunks] == [3, 3, 2, 2]
    assert [len([e for e in ch if e.category == "b"]) for ch in chunks] == [2, 2, 2, 1]
    assert [len([e for e in ch if e.category == "c"]) for ch in chunks] == [1, 1, 1, 0]
    assert sorted(e.prompt for ch in chunks for e in ch) == sorted(e.prompt for e in EXAMPLES)
    assert chunks == [chunk_examples(EXAMPLES, j, 4) for j in range(4)]
    assert chunk_examples(EXAMPLES, 0, 1) == EXAMPLES


def test_joined_chunks_are_the_whole_split_result():
    whole = scored(EXAMPLES)
    parts = [scored(chunk_examples(EXAMPLES, j, 3)) for j in range(3)]
    joined = join_chunks(parts)
    assert joined.correct == whole.correct and joined.per_category == whole.per_category
    assert joined.counts == whole.counts and joined.seconds == 3.0
    assert joined.generated_tokens == whole.generated_tokens == {"a": list(range(10)), "b": list(range(7)),
                                                                 "c": [0, 1, 2]}


def test_running_result_counts_only_what_was_scored():
    parts = [scored(chunk_examples(EXAMPLES, j, 4)) for j in range(2)]
    so_far = running_result(parts)
    assert so_far.counts == {"a": 6, "b": 4, "c": 2} and so_far.n == 12
    # a0 a4 a8 | a1 a5 a9: even digits 0 4 8 → 3 of 6
    assert so_far.per_category["a"] == 0.5
    assert so_far.generated_tokens["a"] == [0, 4, 8, 1, 5, 9]
