"""The search space, built from the SoCE analysis.

For every group (a weak category, or a cluster of categories) the search chooses an
expert among that group's top-k alternates, and the k group weights live on the simplex
(they sum to 1) with a floor ``min_weight``:

    w = min_weight + (1 - k * min_weight) * s,    s on the simplex

``search.weights`` picks how a sampler's numbers in [0, 1] become ``s``:

- ``stick`` (default): k − 1 numbers ``stick.<group>`` (one per group but the last), stick
  breaking (:mod:`soup_search.search.simplex`): every point of the simplex has one set of
  numbers, and uniform numbers give uniform weights.
- ``normalize``: k numbers ``w.<group>``, ``s = u / sum(u)``; scale-redundant (``u`` and
  ``2u`` are the same soup), kept so that the bench can measure one against the other.

With ``per_module`` the attention and MLP tensors get separate weights (``stick_attn.*`` /
``stick_mlp.*``, or ``w_attn.*`` / ``w_mlp.*``); other tensors (embeddings, norms, lm_head)
take their mean.

``method`` (``search.method``) is the merge method a trial's soup is made with: ``linear`` (the
SoCE soup), or a method with a base model (``task_arithmetic``, ``ties``, ...) whose per-model
weights are these same group weights; with ``lambda_range`` the method's global ``lambda`` (the
merged task vector's scale) is searched too, as the number ``lambda``.

The searches of given models, whose numbers are a merge's coefficients and whose models the
config names, have their own spaces: :mod:`~soup_search.search.interpolation_space`
(``search.method: interpolate``) and :mod:`~soup_search.search.task_vector_space`
(``search.method: task_vector``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import optuna

from soup_search.errors import ConfigError
from soup_search.search.simplex import from_simplex, to_simplex

MODULES = ("attn", "mlp")
MODULE_FILTERS = {"attn": "self_attn", "mlp": "mlp"}
#: how a sampler's numbers become simplex weights (``search.weights``), the default first
WEIGHT_MAPS = ("stick", "normalize")
_PREFIX = {"stick": "stick", "normalize": "w"}
#: the searched number that is the merge method's ``lambda``
LAMBDA = "lambda"


def _slug(group: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in group)


def suggest_all(trial, distributions: Mapping) -> None:
    """Ask an Optuna trial for every number of ``distributions`` (a define-by-run space)."""
    for name, dist in distributions.items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            trial.suggest_categorical(name, list(dist.choices))
        else:
            trial.suggest_float(name, dist.low, dist.high)


def _normalized(raw: Sequence[float]) -> list[float]:
    total = sum(raw)
    return [r / total for r in raw] if total > 0 else [1.0 / len(raw)] * len(raw)


@dataclass(frozen=True)
class SearchSpace:
    groups: tuple[str, ...]
    alternates: Mapping[str, tuple[str, ...]]
    min_weight: float = 0.0
    per_module: bool = False
    weights: str = "stick"
    method: str = "linear"
    base_model: str | None = None
    #: the method's fixed global parameters
    method_params: Mapping = field(default_factory=dict)
    #: the searched range of the method's global ``lambda`` (None: not searched)
    lambda_range: tuple[float, float] | None = None

    def __post_init__(self):
        problems = []
        if not self.groups:
            problems.append("the analysis found no group to build a soup from; raise analysis.tau or use grouping: cluster")
        if self.groups and self.min_weight * len(self.groups) >= 1:
            problems.append(
                f"search.min_weight {self.min_weight} is too large for {len(self.groups)} experts; "
                f"use less than {1 / len(self.groups):.3f}"
            )
        for g in self.groups:
            if not self.alternates.get(g):
                problems.append(f"group {g!r} has no candidate expert")
        if self.weights not in WEIGHT_MAPS:
            problems.append(f"search.weights {self.weights!r} is unknown; use one of {', '.join(WEIGHT_MAPS)}")
        if problems:
            raise ConfigError("search space", problems)

    @classmethod
    def from_analysis(cls, experts: Mapping[str, str], alternates: Mapping[str, Sequence[str]],
                      min_weight: float = 0.0, per_module: bool = False, top_k: int | None = None,
                      weights: str = "stick", **method):
        groups = tuple(experts)
        alts = {}
        for g in groups:
            options = list(alternates.get(g) or [experts[g]])
            if experts[g] in options:
                options.remove(experts[g])
            options = [experts[g], *options]  # the expert first
            alts[g] = tuple(options[:top_k] if top_k else options)
        return cls(groups, alts, min_weight, per_module, weights, **method)

    # ---- parameter names -------------------------------------------------------------
    def expert_param(self, g: str) -> str:
        return f"expert.{_slug(g)}"

    @property
    def modules(self) -> tuple[str, ...]:
        return MODULES if self.per_module else ("all",)

    def _weight_groups(self) -> tuple[str, ...]:
        """The groups that own a weight number: all of them, or all but the last (stick)."""
        return self.groups[:-1] if self.weights == "stick" else self.groups

    def weight_params(self, module: str = "all") -> list[str]:
        """The names of one module's weight numbers, in group order."""
        prefix = _PREFIX[self.weights] + ("" if module == "all" else f"_{module}")
        return [f"{prefix}.{_slug(g)}" for g in self._weight_groups()]

    # ---- Optuna ------------------------------------------------------------------------
    def suggest(self, trial) -> None:
        """Define-by-run space for Optuna (also used through Ray Tune's OptunaSearch)."""
        suggest_all(trial, self.distributions())

    def distributions(self) -> dict:
        out = {}
        for g in self.groups:
            if len(self.alternates[g]) > 1:
                out[self.expert_param(g)] = optuna.distributions.CategoricalDistribution(list(self.alternates[g]))
        for module in self.modules:
            for name in self.weight_params(module):
                out[name] = optuna.distributions.FloatDistribution(0.0, 1.0)
        if self.lambda_range is not None:
            out[LAMBDA] = optuna.distributions.FloatDistribution(*self.lambda_range)
        return out

    def method_parameters(self, params: Mapping) -> dict:
        """The merge method's global parameters for ``params``: the fixed ones, and ``lambda`` when searched."""
        searched = {"lambda": float(params[LAMBDA])} if self.lambda_range is not None else {}
        return {**self.method_params, **searched}

    # ---- params <-> weights -------------------------------------------------------------
    def experts_of(self, params: Mapping) -> dict[str, str]:
        return {g: params.get(self.expert_param(g), self.alternates[g][0]) for g in self.groups}

    def _shares(self, numbers: Sequence[float]) -> list[float]:
        if self.weights == "stick":
            return to_simplex(numbers)
        return _normalized(numbers)

    def _numbers(self, shares: Sequence[float]) -> list[float]:
        """The inverse of :meth:`_shares` (for ``normalize`` the one with the largest number 1)."""
        if self.weights == "stick":
            return from_simplex(shares)
        top = max(shares)
        return [s / top for s in shares]

    def group_weights(self, params: Mapping) -> dict[str, dict[str, float]]:
        """module ("all", or "attn"/"mlp") -> group -> weight on the simplex."""
        k, out = len(self.groups), {}
        for module in self.modules:
            shares = self._shares([float(params[name]) for name in self.weight_params(module)])
            out[module] = {g: self.min_weight + (1 - k * self.min_weight) * s for g, s in zip(self.groups, shares)}
        return out

    def soup(self, params: Mapping) -> dict[str, dict[str, float]]:
        """module -> model -> weight (weights of a model chosen for two groups add up)."""
        experts = self.experts_of(params)
        out: dict[str, dict[str, float]] = {}
        for module, weights in self.group_weights(params).items():
            per_model: dict[str, float] = {}
            for g, w in weights.items():
                per_model[experts[g]] = per_model.get(experts[g], 0.0) + w
            out[module] = per_model
        return out

    def params_for(self, weights: Sequence[float], experts: Mapping[str, str] | None = None) -> dict:
        """The params that give these group weights (the inverse map, for enqueued points).

        Weights below the floor are raised to it; the weights are then read as shares of what
        is above the floor, so each expert alone and the uniform soup map exactly."""
        k = len(self.groups)
        if len(weights) != k:
            raise ValueError("one weight per group")
        scale = 1 - k * self.min_weight
        shares = _normalized([max(w - self.min_weight, 0.0) / scale for w in weights])
        params: dict = {}
        for g in self.groups:
            if len(self.alternates[g]) > 1:
                params[self.expert_param(g)] = (experts or {}).get(g, self.alternates[g][0])
        numbers = self._numbers(shares)
        for module in self.modules:
            params.update(zip(self.weight_params(module), numbers))
        if self.lambda_range is not None:  # a baseline point: the method's own default scale, 1
            low, high = self.lambda_range
            params[LAMBDA] = min(max(1.0, low), high)
        return params
