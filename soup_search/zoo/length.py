"""The zoo's length pair: a verbose and a terse fine-tune of one base, for the length axis of a sweep.

``soup-search sweep A B`` reports mean generated tokens per λ; the pair makes that axis move.
Both models are fine-tuned from the base on every toy category, at one learning rate:

- **verbose** learns to write :attr:`LengthPair.pause` filler tokens (spaces) after every answer,
  then ``</s>``, and is fine-tuned longer (``verbose_steps``): longer answers, higher accuracy,
  the toy stand-in for a "thinking" model;
- **terse** learns the bare answer (the toy's own format) for fewer steps (``terse_steps``):
  short answers, lower accuracy, the "instruct" model.

The filler costs no accuracy: every scorer strips a completion and the toy objective matches
exactly after white-space normalisation, so ``"46    "`` scores like ``"46"`` while each space
counts as a generated token. The filler comes after the answer, never before it, so an answer
stays whole when the toy's ``max_new_tokens`` (8) cuts a long answer's run of filler short.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from soup_search.objectives.base import Example

#: the names (and manifest roles) of the pair's models
VERBOSE, TERSE = "verbose", "terse"
#: the filler token the verbose model writes after an answer (white space: the matcher drops it)
FILLER = " "
#: the suffix that marks a category's verbose examples in a training mixture
SUFFIX = ":verbose"


@dataclass(frozen=True)
class LengthPair:
    """The recipe of a zoo's verbose/terse pair (both fine-tuned from the base at ``lr``)."""

    #: filler tokens the verbose model writes after every answer
    pause: int
    verbose_steps: int
    terse_steps: int
    lr: float


def verbose_answer(answer: str, pause: int) -> str:
    """The answer as the verbose model writes it: the answer, then ``pause`` filler tokens."""
    return answer + FILLER * pause


def verbose_examples(examples: Iterable[Example], pause: int) -> list[Example]:
    """The same prompts with verbose answers, filed under ``<category>:verbose``."""
    return [Example(prompt=ex.prompt, answer=verbose_answer(ex.answer, pause), category=ex.category + SUFFIX)
            for ex in examples]


def pair_mixture(role: str, categories: Sequence[str]) -> dict[str, float]:
    """Sampling weights of the pair's fine-tune ``role``: every category alike, in its own format."""
    suffix = SUFFIX if role == VERBOSE else ""
    return {c + suffix: 1.0 for c in categories}
