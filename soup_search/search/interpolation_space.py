"""``search.method: interpolate``: the search's number is λ of ``λ·θ_A + (1 − λ)·θ_B`` (arXiv 2510.10977).

The two models are given (``search.pair: [A, B]``); the SoCE analysis does not choose them. One
number ``lambda`` in [0, 1], or with ``per_module`` two, ``lambda_attn`` (the ``self_attn``
tensors) and ``lambda_mlp`` (the ``mlp`` tensors); every other tensor (embeddings, norms,
lm_head) takes their mean, the rule of the SoCE space's ``per_module``. The soup is made with
the ``interpolate`` merge method, A first.

A soup's weights (module → model → weight) are the coefficients of the linear combination:
``{A: λ, B: 1 − λ}``. The baselines: λ = 0 (B alone), 0.5 (the midpoint) and 1 (A alone).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import optuna

from soup_search.merge import MergeRecipe
from soup_search.search.space import LAMBDA, MODULE_FILTERS, MODULES, suggest_all

#: the λ of the baselines, in row order
BASELINE_LAMBDAS = (0.0, 0.5, 1.0)
#: the grid (``search.sampler: grid`` or ``search.grid``): λ = 0, 0.1, ..., 1 (per module: every pair)
GRID_STEP = 0.1


@dataclass(frozen=True)
class InterpolationSpace:
    a: str
    b: str
    per_module: bool = False

    #: the merge method of every soup of this space
    method = "interpolate"

    @property
    def modules(self) -> tuple[str, ...]:
        return MODULES if self.per_module else ("all",)

    def lambda_param(self, module: str = "all") -> str:
        """The name of a module's number: ``lambda``, or ``lambda_attn`` / ``lambda_mlp``."""
        return LAMBDA if module == "all" else f"{LAMBDA}_{module}"

    # ---- Optuna ------------------------------------------------------------------------
    def distributions(self) -> dict:
        return {self.lambda_param(m): optuna.distributions.FloatDistribution(0.0, 1.0) for m in self.modules}

    def suggest(self, trial) -> None:
        suggest_all(trial, self.distributions())

    # ---- params -> soup ----------------------------------------------------------------
    def lambdas(self, params: Mapping) -> dict[str, float]:
        """module ("all", or "attn"/"mlp") -> λ."""
        return {m: float(params[self.lambda_param(m)]) for m in self.modules}

    def soup(self, params: Mapping) -> dict[str, dict[str, float]]:
        """module -> model -> weight: ``{A: λ, B: 1 − λ}`` per module."""
        return {m: {self.a: lam, self.b: 1.0 - lam} for m, lam in self.lambdas(params).items()}

    def recipe(self, params: Mapping) -> MergeRecipe:
        """``interpolate`` of A and B; per module a filter list (self_attn, mlp, the rest: their mean)."""
        lams = self.lambdas(params)
        if self.per_module:
            attn, mlp = lams["attn"], lams["mlp"]
            lam = [{"filter": MODULE_FILTERS["attn"], "value": attn}, {"filter": MODULE_FILTERS["mlp"], "value": mlp},
                   {"value": (attn + mlp) / 2}]
        else:
            lam = lams["all"]
        return MergeRecipe.model_validate({"models": [{"model": self.a}, {"model": self.b}],
                                           "merge_method": self.method, "parameters": {LAMBDA: lam}})

    # ---- points --------------------------------------------------------------------------
    def point(self, lam: float) -> dict[str, float]:
        """The params with every module at ``lam``."""
        return {self.lambda_param(m): float(lam) for m in self.modules}

    def baselines(self) -> list[tuple[str, dict]]:
        """(row name, params): B alone, the midpoint, A alone."""
        names = {0.0: f"lambda 0 ({self.b})", 0.5: "lambda 0.5 (midpoint)", 1.0: f"lambda 1 ({self.a})"}
        return [(names[lam], self.point(lam)) for lam in BASELINE_LAMBDAS]

    def grid_points(self) -> list[dict]:
        """λ = 0, 0.1, ..., 1 for every module (per module: the whole 2-D grid)."""
        values = [round(i * GRID_STEP, 10) for i in range(round(1 / GRID_STEP) + 1)]
        names = [self.lambda_param(m) for m in self.modules]
        return [dict(zip(names, combo)) for combo in itertools.product(values, repeat=len(names))]
