"""The scorer contract.

A scorer builds its model once, then for every candidate:

1. ``load_weights(stream)`` copies ``(name, tensor)`` pairs into the model in place;
2. ``score(objective, split)`` runs batched greedy generation on that split and returns
   per-category accuracy and counts (``score_examples`` does the same for a chunk of it).

The test split is only scored with ``held_out=True`` (the objective enforces it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from soup_search.errors import SoupSearchError
from soup_search.objectives import build_objective, objective_target

if TYPE_CHECKING:  # the run store's actor imports this module and needs no torch
    import torch


#: objectives built in this process (ObjectiveSpec.build), oldest first
_BUILT: dict[str, Any] = {}
_BUILT_MAX = 8


class WeightsNotLoaded(SoupSearchError):
    """A chunk was asked of a scorer that does not hold the trial's weights (it was restarted)."""


@dataclass(frozen=True)
class ObjectiveSpec:
    """How to build an objective anywhere (in a Ray actor): its name, parameters and class path.

    ``target`` ("module:Class", from :func:`~soup_search.objectives.objective_target`) lets a
    process that never saw the driver's ``register_objective`` calls import the class."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    target: str | None = None
    #: categories only the final held-out report scores (see ``Objective.hold_out``)
    held_out_categories: tuple[str, ...] = ()
    #: the objective's :meth:`~soup_search.objectives.Objective.data_fingerprint` ("" when not
    #: taken): edited data behind the same parameters (a JSONL file, an lm-eval task) is a new objective
    data: str = ""

    @classmethod
    def of(cls, name: str, params: Mapping[str, Any], held_out_categories=()) -> ObjectiveSpec:
        return cls(name, dict(params), objective_target(name), tuple(held_out_categories))

    def with_data(self) -> ObjectiveSpec:
        """This spec with the fingerprint of the data it builds today (builds the objective once)."""
        return replace(self, data=self.build().data_fingerprint())

    def build(self):
        """The objective, built once per process for the same name, parameters and held-out
        categories (reading a benchmark's files or lm-eval's task index takes seconds)."""
        key = json.dumps([self.name, dict(self.params), self.target, list(self.held_out_categories)],
                         sort_keys=True, default=str)
        if key not in _BUILT:
            while len(_BUILT) >= _BUILT_MAX:
                _BUILT.pop(next(iter(_BUILT)))
            _BUILT[key] = build_objective(self.name, dict(self.params), self.target).hold_out(
                self.held_out_categories)
        return _BUILT[key]

    @property
    def category_weights(self) -> dict[str, float] | None:
        return self.params.get("category_weights")

    def fingerprint(self) -> str:
        data = {"name": self.name, "params": dict(self.params)}
        if self.held_out_categories:  # (absent otherwise: earlier cache entries stay valid)
            data["held_out_categories"] = list(self.held_out_categories)
        if self.data:
            data["data"] = self.data
        blob = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ScoreResult:
    """Accuracy per category on one split, with example counts and the time it took.

    ``correct`` keeps each example's correctness, a string of "0"/"1" per category in the
    split's example order, so that two soups can be compared example by example (paired).
    ``generated_tokens`` keeps, in the same order, the number of tokens generated for each
    answer (its end-of-sequence token not counted); empty in results written before token
    counts existed.
    """

    per_category: dict[str, float]
    counts: dict[str, int]
    seconds: float = 0.0
    correct: dict[str, str] = field(default_factory=dict)
    generated_tokens: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of_answers(cls, objective, examples, predictions, seconds: float,
                   generated_tokens: Sequence[int] | None = None) -> ScoreResult:
        """Match each prediction against its example's answer and tally them per category
        (``generated_tokens``: each answer's token count, in the order of ``examples``)."""
        bits: dict[str, list[str]] = {}
        tokens: dict[str, list[int]] = {}
        lengths = generated_tokens if generated_tokens is not None else [None] * len(examples)
        for ex, pred, n in zip(examples, predictions, lengths, strict=True):
            bits.setdefault(ex.category, []).append("1" if objective.score_example(ex, pred) else "0")
            if n is not None:
                tokens.setdefault(ex.category, []).append(int(n))
        return cls(per_category={c: b.count("1") / len(b) for c, b in bits.items()},
                   counts={c: len(b) for c, b in bits.items()}, seconds=float(seconds),
                   correct={c: "".join(b) for c, b in bits.items()}, generated_tokens=tokens)

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @property
    def mean(self) -> float:
        return sum(self.per_category.values()) / max(len(self.per_category), 1)

    @property
    def mean_tokens(self) -> float | None:
        """Generated tokens per answer, over every example (None without token counts)."""
        counts = [n for per in self.generated_tokens.values() for n in per]
        return sum(counts) / len(counts) if counts else None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> "ScoreResult":
        return cls(per_category=dict(data["per_category"]), counts=dict(data["counts"]),
                   seconds=float(data.get("seconds", 0.0)), correct=dict(data.get("correct") or {}),
                   generated_tokens={c: list(v) for c, v in (data.get("generated_tokens") or {}).items()})


@runtime_checkable
class Scorer(Protocol):
    """Scores weights on an objective split. Implementations: ``HFScorer``, ``VLLMScorer``."""

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Copy the named tensors into the model in place; return how many were loaded."""

    def score(self, objective, split: str, held_out: bool = False) -> ScoreResult:
        """Greedy-generate answers for the split's prompts and score them per category."""

    def score_examples(self, objective, examples: Sequence) -> ScoreResult:
        """The same for some examples of a split (a chunk, see :mod:`soup_search.scoring.chunks`)."""
