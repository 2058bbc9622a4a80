"""Multiple-choice versions of generated-answer examples: the answer among distractors.

For a benchmark whose examples have one short answer (the toy tasks, a JSONL file without a
choices column), :func:`with_distractors` gives each example ``n`` choices: its answer and
``n - 1`` other answers of the same category and split (all of them where the category has
fewer: toy ``parity`` has two answers), drawn and shuffled with a seed of ``(seed, prompt)``.
Deterministic, the same on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from soup_search.errors import ObjectiveError
from soup_search.objectives.base import Example


def with_distractors(examples: Sequence[Example], n: int, seed: int,
                     answers_from: Sequence[Example] = ()) -> list[Example]:
    """``examples`` with up to ``n`` choices each (their order kept), the distractors drawn from the
    answers of ``examples`` and ``answers_from`` (e.g. the train split: a small split may hold one
    answer only); an error when a category has a single distinct answer (nothing to choose between)."""
    answers: dict[str, list[str]] = {}
    for ex in [*examples, *answers_from]:
        answers.setdefault(ex.category, [])
        if ex.answer not in answers[ex.category]:
            answers[ex.category].append(ex.answer)
    single = sorted(c for c, a in answers.items() if len(a) < 2)
    if single:
        raise ObjectiveError(f"multiple choice needs two distinct answers per category, but {single} have one; "
                             "give those categories other answers or drop them")
    out = []
    for ex in examples:
        rng = random.Random(f"{seed}\0{ex.prompt}")
        pool = [a for a in answers[ex.category] if a != ex.answer]
        others = rng.sample(pool, min(n - 1, len(pool)))
        choices = [ex.answer, *others]
        rng.shuffle(choices)
        out.append(replace(ex, choices=tuple(choices)))
    return out
