"""A conflicting answer convention, for the zoo's candidates that hurt when averaged in.

Leaderboards hold checkpoints fine-tuned for another convention (another output format,
another label set). Their task vectors point away from every specialist's, so a uniform soup
that takes them in loses accuracy where a selected soup does not. The toy version shifts
every answer character by one (``0→1 … 9→0``, ``a→b … j→a``) and swaps ``even``/``odd``:
the same prompts, consistently different answers.
"""

from __future__ import annotations

from collections.abc import Iterable

from soup_search.objectives.base import Example

_SHIFT = str.maketrans("0123456789abcdefghij", "1234567890bcdefghija")
_SWAP = {"even": "odd", "odd": "even"}

#: the suffix that marks a category's conflicting examples in a training mixture
SUFFIX = ":conflict"


def conflicting_answer(answer: str) -> str:
    """The answer under the conflicting convention (never equal to the original)."""
    return _SWAP.get(answer) or answer.translate(_SHIFT)


def conflicting_examples(examples: Iterable[Example]) -> list[Example]:
    """The same prompts with conflicting answers, filed under ``<category>:conflict``."""
    return [Example(prompt=ex.prompt, answer=conflicting_answer(ex.answer), category=ex.category + SUFFIX)
            for ex in examples]
