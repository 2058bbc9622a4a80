"""``toy``: synthetic short text tasks a tiny LM can learn, one category each.

Prompts look like ``"add 12+34="`` with answer ``"46"``. With ``choices: N`` every example is
multiple choice instead: its answer among ``N - 1`` other answers of its category (scored by
log-likelihood, no generation). Every split is generated
separately from ``seed``; a prompt belongs to exactly one split (chosen by a stable hash
of the prompt), so splits are disjoint and identical on every machine.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence

from soup_search.objectives.base import Example, Objective
from soup_search.objectives.choices import with_distractors
from soup_search.objectives.prompting import Prompting
from soup_search.errors import ObjectiveError


def _digits(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(lo, hi)))


def _letters(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice("abcdefghij") for _ in range(rng.randint(lo, hi)))


def _add(rng):
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    return f"{a}+{b}=", str(a + b)


def _sub(rng):
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    a, b = max(a, b), min(a, b)
    return f"{a}-{b}=", str(a - b)


def _sort(rng):
    s = _digits(rng, 4, 7)
    return f"{s}=", "".join(sorted(s))


def _reverse(rng):
    s = _letters(rng, 3, 6)
    return f"{s}=", s[::-1]


def _max(rng):
    s = _digits(rng, 6, 12)
    return f"{s}=", max(s)


def _copy(rng):
    s = _letters(rng, 3, 7)
    return f"{s}=", s


def _count(rng):
    s = "".join(rng.choice("abc") for _ in range(rng.randint(6, 14)))
    return f"{s}=", str(s.count("a"))


def _parity(rng):
    s = "".join(rng.choice("01") for _ in range(rng.randint(5, 10)))
    return f"{s}=", "even" if s.count("1") % 2 == 0 else "odd"


TASKS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "add": _add,
    "sub": _sub,
    "sort": _sort,
    "reverse": _reverse,
    "max": _max,
    "copy": _copy,
    "count": _count,
    "parity": _parity,
}

#: share of the prompt space each split owns (by stable hash): test 10%, dev 10%, train 80%
_SPLIT_BUCKETS = {"test": range(0, 10), "dev": range(10, 20), "train": range(20, 100)}


def split_of(prompt: str) -> str:
    """The one split a prompt belongs to, by a stable hash (the same on every machine)."""
    bucket = int.from_bytes(hashlib.blake2b(prompt.encode(), digest_size=8).digest(), "big") % 100
    return next(s for s, r in _SPLIT_BUCKETS.items() if bucket in r)


class ToyObjective(Objective):
    name = "toy"
    max_new_tokens = 8
    #: a toy prompt ends with "=" and its answer follows at once (the zoo's training format)
    prompting = Prompting(target_delimiter="", fewshot_delimiter=" ")

    def __init__(self, seed: int = 0, categories: Sequence[str] | None = None,
                 n_train: int = 2000, n_dev: int = 100, n_test: int = 100,
                 category_weights: dict[str, float] | None = None, choices: int = 0):
        cats = tuple(categories) if categories else tuple(TASKS)
        unknown = sorted(set(cats) - set(TASKS))
        if unknown:
            raise ObjectiveError(f"unknown toy categories {unknown}; choose from {list(TASKS)}")
        for key, n in {"n_train": n_train, "n_dev": n_dev, "n_test": n_test}.items():
            if n <= 0:
                raise ObjectiveError(f"toy objective: {key} must be > 0, got {n}")
        if isinstance(choices, bool) or not isinstance(choices, int) or choices == 1 or choices < 0:
            raise ObjectiveError(f"toy objective: choices must be 0 (generate answers) or >= 2, got {choices!r}")
        self.choices = choices
        super().__init__(cats, scoring="exact_match", category_weights=category_weights)
        self.seed = seed
        self.sizes = {"train": n_train, "dev": n_dev, "test": n_test}
        self._cache: dict[str, list[Example]] = {}

    def _load(self, split: str) -> list[Example]:
        if split not in self._cache:
            examples = [ex for cat in self.categories for ex in self._generate(cat, split)]
            if self.choices:  # distractors from this split's and train's answers
                train = [] if split == "train" else [ex for c in self.categories for ex in self._generate(c, "train")]
                examples = with_distractors(examples, self.choices, self.seed, answers_from=train)
            self._cache[split] = examples
        return self._cache[split]

    def _generate(self, category: str, split: str) -> list[Example]:
        rng = random.Random(f"toy/{self.seed}/{category}/{split}")
        task, want = TASKS[category], self.sizes[split]
        seen: set[str] = set()
        out: list[Example] = []
        for _ in range(want * 50):
            body, answer = task(rng)
            prompt = f"{category} {body}"
            if prompt in seen or split_of(prompt) != split:
                continue
            seen.add(prompt)
            out.append(Example(prompt=prompt, answer=answer, category=category))
            if len(out) == want:
                break
        return out
