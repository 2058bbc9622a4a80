"""The objective contract: a named benchmark made of categories, with train/dev/test splits.

An objective yields :class:`Example` records (prompt, reference answer, category) per split
and scores a prediction against its reference. Splits are deterministic and disjoint.

The held-out guard: ``examples("test")`` raises unless the caller passes ``held_out=True``.
Only the final held-out report does that; the search never sees the test split.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from soup_search.errors import ObjectiveError
from soup_search.objectives.matching import MatchFn, get_matcher
from soup_search.objectives.prompting import Prompting

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Example:
    """One scored question. With ``choices`` it is multiple choice: the scorer ranks the choices by
    log-likelihood after the prompt instead of generating, and ``answer`` is the correct choice."""

    prompt: str
    answer: str
    category: str
    choices: tuple[str, ...] = ()


class Objective(abc.ABC):
    """A benchmark with categories. Subclasses implement :meth:`_load`."""

    #: registry name, e.g. ``"toy"``
    name: str = ""
    #: how many tokens a scorer generates per example
    max_new_tokens: int = 16
    #: how examples become prompts (chat template, system prompt, few-shot, stop strings)
    prompting: Prompting = Prompting()
    #: facts a report must state about this objective's data (e.g. a split made here, with a seed)
    notes: tuple[str, ...] = ()

    def __init__(self, categories: Sequence[str], scoring: str = "exact_match",
                 category_weights: Mapping[str, float] | None = None):
        self.categories: tuple[str, ...] = tuple(categories)
        self.scoring = scoring
        self._score_fn: MatchFn = get_matcher(scoring)
        self.category_weights = dict(category_weights) if category_weights else None
        #: categories kept out of the search: only the final held-out report scores them
        self.held_out_categories: tuple[str, ...] = ()
        self._train_pools: tuple[dict[str, list[Example]], list[Example]] | None = None
        if self.category_weights:
            unknown = sorted(set(self.category_weights) - set(self.categories))
            if unknown:
                raise ObjectiveError(
                    f"category_weights name unknown categories {unknown}; use some of {list(self.categories)}"
                )

    def hold_out(self, categories: Iterable[str]) -> Objective:
        """Keep ``categories`` out of every split until the final report (``held_out=True``)."""
        self.held_out_categories = tuple(self._check_categories(categories, ordered=True))
        return self

    @property
    def search_categories(self) -> tuple[str, ...]:
        """The categories the search may see: all but the held-out ones."""
        return tuple(c for c in self.categories if c not in self.held_out_categories)

    @abc.abstractmethod
    def _load(self, split: str) -> list[Example]:
        """All examples of one split, in a deterministic order."""

    def examples(self, split: str, categories: Iterable[str] | None = None, *,
                 held_out: bool = False) -> list[Example]:
        """Examples of ``split``, optionally only of ``categories``.

        The ``test`` split, and every split of a held-out category, are refused unless
        ``held_out=True`` (the final report only).
        """
        if split not in SPLITS:
            raise ObjectiveError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        if split == "test" and not held_out:
            raise ObjectiveError(
                f"objective {self.name!r} refuses to score the test split during search; "
                "only the final held-out report may use it (held_out=True)"
            )
        wanted = set(self._check_categories(categories))
        if not held_out:
            hidden = wanted & set(self.held_out_categories)
            if categories is not None and hidden:
                raise ObjectiveError(f"objective {self.name!r} holds out {sorted(hidden)} until the final report; "
                                     "only the held-out report may score them (held_out=True)")
            wanted -= set(self.held_out_categories)
        return [ex for ex in self._load(split) if ex.category in wanted]

    def score(self, prediction: str, reference: str) -> float:
        """1.0 for a correct prediction, else 0.0."""
        return self._score_fn(prediction, reference)

    def score_example(self, example: Example, prediction: str) -> float:
        """1.0 when ``prediction`` (a generated answer, or the chosen choice) answers ``example``.
        A multiple-choice example is right when the chosen choice is its answer."""
        if example.choices:
            return float(prediction == example.answer)
        return self.score(prediction, example.answer)

    def data_fingerprint(self) -> str:
        """A hash of what scoring this objective reads: every dev and test example (held-out
        categories too), the train examples when few-shot prompts show them, the prompting and the
        generation budget. Equal parameters over edited data give another fingerprint."""
        digest = hashlib.blake2b(digest_size=8)
        digest.update(repr((self.prompting, self.max_new_tokens, self.categories)).encode())
        for split in ("dev", "test", "train") if self.prompting.fewshot else ("dev", "test"):
            for ex in self._load(split):
                digest.update(repr((split, ex.prompt, ex.answer, ex.category, ex.choices)).encode())
        return digest.hexdigest()

    def shots(self, example: Example) -> tuple[Example, ...]:
        """The solved train examples shown before ``example`` (``prompting.fewshot`` of them)."""
        if not self.prompting.fewshot:
            return ()
        if self._train_pools is None:
            by_category: dict[str, list[Example]] = {}
            for ex in self._load("train"):
                by_category.setdefault(ex.category, []).append(ex)
            hidden = set(self.held_out_categories)  # (their train rows are never shown to other categories)
            searched = [ex for c, rows in by_category.items() if c not in hidden for ex in rows]
            self._train_pools = (by_category, searched)
        by_category, searched = self._train_pools
        # a held-out category's example (final report) has its own train rows, and no others
        return self.prompting.draw_shots(example, by_category.get(example.category, []), searched)

    def aggregate(self, per_category: Mapping[str, float]) -> float:
        """The objective value of per-category accuracies: the (weighted) mean over categories."""
        return weighted_mean({c: per_category[c] for c in self.categories if c in per_category},
                             self.category_weights)

    def _check_categories(self, categories: Iterable[str] | None, ordered: bool = False) -> list[str]:
        if categories is None:
            return list(self.categories)
        wanted = list(dict.fromkeys(categories))
        unknown = sorted(set(wanted) - set(self.categories))
        if unknown:
            raise ObjectiveError(
                f"unknown categories {unknown} for objective {self.name!r}; known: {list(self.categories)}"
            )
        return wanted


def weighted_mean(per_category: Mapping[str, float], weights: Mapping[str, float] | None = None) -> float:
    """The search objective of per-category accuracies: their mean, weighted by ``weights``
    (a category missing from ``weights`` counts 1). Needs no objective data, so a trial process
    aggregates without building the objective."""
    if not per_category:
        raise ObjectiveError("no category scores to aggregate")
    w = {c: float((weights or {}).get(c, 1.0)) for c in per_category}
    total = sum(w.values())
    if total <= 0:
        raise ObjectiveError("category weights sum to zero; give at least one category a positive weight")
    return sum(w[c] * per_category[c] for c in per_category) / total
