"""``search.method: task_vector``: ``θ_T + Σ α_i (θ_plus_i − θ_minus_i)``, one α per vector (arXiv 2509.01363).

The target T and the vectors are given (``search.target``, ``search.vectors``); the SoCE
analysis does not choose them. Each vector's number ``alpha.<plus>-<minus>`` lies in
``search.alpha_range`` (default [-1, 2]; a negative α is the ablation). The soup is made with
``task_arithmetic``, base T: each model of the vectors but T gets the sum of its coefficients
(``+α_i`` as a plus, ``−α_i`` as a minus) as its weight, with ``normalize`` off and ``lambda`` 1
(mergekit's defaults), which is exactly the sum above. Every model of the vectors stays in the
recipe even at weight 0, so that all α = 0 is a recipe too (T itself).

A soup's weights (module → model → weight) are the coefficients of the linear combination:
T 1, each plus ``+α``, each minus ``−α`` (they sum to 1). The baselines: all α = 0 (T
itself), each vector alone at α = 1, and all at 1.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import optuna

from soup_search.merge import MergeRecipe
from soup_search.search.space import suggest_all

#: ``search.alpha_range`` when not given (the ``transfer`` command's default range)
DEFAULT_ALPHA_RANGE = (-1.0, 2.0)
#: the grid (``search.sampler: grid`` or ``search.grid``): α every 0.25 over the range, per vector
GRID_STEP = 0.25


@dataclass(frozen=True)
class Vector:
    """A task vector ``θ_plus − θ_minus`` (two fine-tunes of one base)."""

    plus: str
    minus: str

    @property
    def param(self) -> str:
        """Its searched number: ``alpha.<plus>-<minus>``."""
        return f"alpha.{self.plus}-{self.minus}"


@dataclass(frozen=True)
class TaskVectorSpace:
    target: str
    vectors: tuple[Vector, ...]
    alpha_range: tuple[float, float] = DEFAULT_ALPHA_RANGE

    #: the merge method of every soup of this space
    method = "task_arithmetic"

    @classmethod
    def of(cls, target: str, vectors: Sequence[tuple[str, str]], alpha_range: tuple[float, float] | None = None):
        """From (plus, minus) pairs; ``alpha_range`` None is the default range."""
        return cls(target, tuple(Vector(p, m) for p, m in vectors), tuple(alpha_range or DEFAULT_ALPHA_RANGE))

    # ---- Optuna ------------------------------------------------------------------------
    def distributions(self) -> dict:
        return {v.param: optuna.distributions.FloatDistribution(*self.alpha_range) for v in self.vectors}

    def suggest(self, trial) -> None:
        suggest_all(trial, self.distributions())

    # ---- params -> soup ----------------------------------------------------------------
    def alphas(self, params: Mapping) -> list[float]:
        return [float(params[v.param]) for v in self.vectors]

    def _models(self) -> list[str]:
        """The models of the vectors but the target, in order of first mention."""
        return [m for m in dict.fromkeys(m for v in self.vectors for m in (v.plus, v.minus)) if m != self.target]

    def soup(self, params: Mapping) -> dict[str, dict[str, float]]:
        """``{"all": model -> coefficient}``: T 1, each plus ``+α``, each minus ``−α`` (summed per model)."""
        weights = {self.target: 1.0, **dict.fromkeys(self._models(), 0.0)}
        for v, alpha in zip(self.vectors, self.alphas(params)):
            weights[v.plus] += alpha
            weights[v.minus] -= alpha
        return {"all": weights}

    def recipe(self, params: Mapping) -> MergeRecipe:
        """``task_arithmetic`` with base T; each other model's weight is its coefficient."""
        weights = self.soup(params)["all"]
        return MergeRecipe.model_validate({
            "models": [{"model": m, "parameters": {"weight": weights[m]}} for m in self._models()],
            "merge_method": self.method, "base_model": self.target})

    # ---- points --------------------------------------------------------------------------
    def point(self, alphas: Sequence[float]) -> dict[str, float]:
        return {v.param: float(a) for v, a in zip(self.vectors, alphas)}

    def baselines(self) -> list[tuple[str, dict]]:
        """(row name, params): T itself (all α 0), each vector alone at α 1, all at 1 (one vector: once)."""
        n = len(self.vectors)
        rows = [(f"alpha 0 ({self.target})", self.point([0.0] * n))]
        if n > 1:
            rows += [(f"alpha 1 on {v.plus}-{v.minus} only", self.point([1.0 if j == i else 0.0 for j in range(n)]))
                     for i, v in enumerate(self.vectors)]
        rows.append(("alpha 1" if n == 1 else "alpha 1 on every vector", self.point([1.0] * n)))
        return rows

    def grid_points(self) -> list[dict]:
        """α every :data:`GRID_STEP` from the range's low end (its high end included), every combination."""
        low, high = self.alpha_range
        values = [round(low + i * GRID_STEP, 10) for i in range(int((high - low) / GRID_STEP + 1e-9) + 1)]
        if values[-1] < high:
            values.append(float(high))
        return [self.point(combo) for combo in itertools.product(values, repeat=len(self.vectors))]
