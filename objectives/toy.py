"""``toy``: the toy tasks (:mod:`.toy_tasks`) as an objective, one category each.

Prompts look like ``"add 12+34="`` with answer ``"46"``; splits are disjoint and identical on
every machine. With ``choices: N`` every example is multiple choice instead: its answer among
``N - 1`` other answers of its category (scored by log-likelihood, no generation).
"""

from __future__ import annotations

from collections.abc import Sequence

from soup_search.errors import ObjectiveError
from soup_search.objectives.base import Example, Objective
from soup_search.objectives.choices import with_distractors
from soup_search.objectives.prompting import Prompting
from soup_search.objectives.toy_tasks import TASKS, split_of, toy_examples

__all__ = ["TASKS", "ToyObjective", "split_of"]


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
            examples = [ex for c in self.categories for ex in toy_examples(self.seed, c, split, self.sizes[split])]
            if self.choices:  # distractors from this split's and train's answers
                train = [] if split == "train" else self._load("train")
                examples = with_distractors(examples, self.choices, self.seed, answers_from=train)
            self._cache[split] = examples
        return self._cache[split]
