"""The search space, built from the SoCE analysis.

For every group (a weak category, or a cluster of categories) the search chooses an
expert among that group's top-k alternates, and a weight. Weights live on the simplex
(they sum to 1) with a floor ``min_weight``: each group draws ``u_g`` in [0, 1] and

    w_g = min_weight + (1 - k * min_weight) * u_g / sum(u)

With ``per_module`` the attention and MLP tensors get separate weights (``attn`` / ``mlp``);
other tensors (embeddings, norms, lm_head) take their mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import optuna

from soup_search.errors import ConfigError

MODULES = ("attn", "mlp")
MODULE_FILTERS = {"attn": "self_attn", "mlp": "mlp"}


def _slug(group: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in group)


@dataclass(frozen=True)
class SearchSpace:
    groups: tuple[str, ...]
    alternates: Mapping[str, tuple[str, ...]]
    min_weight: float = 0.0
    per_module: bool = False

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
        if problems:
            raise ConfigError("search space", problems)

    @classmethod
    def from_analysis(cls, experts: Mapping[str, str], alternates: Mapping[str, Sequence[str]],
                      min_weight: float = 0.0, per_module: bool = False, top_k: int | None = None):
        groups = tuple(experts)
        alts = {}
        for g in groups:
            options = list(alternates.get(g) or [experts[g]])
            if experts[g] in options:
                options.remove(experts[g])
            options = [experts[g], *options]  # the expert first
            alts[g] = tuple(options[:top_k] if top_k else options)
        return cls(groups, alts, min_weight, per_module)

    # ---- parameter names -------------------------------------------------------------
    def expert_param(self, g: str) -> str:
        return f"expert.{_slug(g)}"

    def weight_params(self, g: str) -> list[str]:
        if self.per_module:
            return [f"w_{m}.{_slug(g)}" for m in MODULES]
        return [f"w.{_slug(g)}"]

    # ---- Optuna ------------------------------------------------------------------------
    def suggest(self, trial) -> None:
        """Define-by-run space for Optuna (also used through Ray Tune's OptunaSearch)."""
        for g in self.groups:
            if len(self.alternates[g]) > 1:
                trial.suggest_categorical(self.expert_param(g), list(self.alternates[g]))
            for name in self.weight_params(g):
                trial.suggest_float(name, 0.0, 1.0)

    def distributions(self) -> dict:
        out = {}
        for g in self.groups:
            if len(self.alternates[g]) > 1:
                out[self.expert_param(g)] = optuna.distributions.CategoricalDistribution(list(self.alternates[g]))
            for name in self.weight_params(g):
                out[name] = optuna.distributions.FloatDistribution(0.0, 1.0)
        return out

    # ---- params <-> weights -------------------------------------------------------------
    def experts_of(self, params: Mapping) -> dict[str, str]:
        return {g: params.get(self.expert_param(g), self.alternates[g][0]) for g in self.groups}

    def _simplex(self, raw: Sequence[float]) -> list[float]:
        k = len(raw)
        total = sum(raw)
        shares = [r / total for r in raw] if total > 0 else [1.0 / k] * k
        return [self.min_weight + (1 - k * self.min_weight) * s for s in shares]

    def group_weights(self, params: Mapping) -> dict[str, dict[str, float]]:
        """module ("all", or "attn"/"mlp") -> group -> weight on the simplex."""
        if not self.per_module:
            w = self._simplex([float(params[self.weight_params(g)[0]]) for g in self.groups])
            return {"all": dict(zip(self.groups, w))}
        out = {}
        for i, m in enumerate(MODULES):
            w = self._simplex([float(params[self.weight_params(g)[i]]) for g in self.groups])
            out[m] = dict(zip(self.groups, w))
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
        """The params that give these group weights (the inverse map, for enqueued points)."""
        if len(weights) != len(self.groups):
            raise ValueError("one weight per group")
        k = len(self.groups)
        scale = 1 - k * self.min_weight
        raw = [max(w - self.min_weight, 0.0) / scale if scale > 0 else 1.0 for w in weights]
        top = max(raw)
        raw = [r / top for r in raw] if top > 0 else [1.0] * k  # the map is scale-free: keep u in [0, 1]
        params: dict = {}
        for g, r in zip(self.groups, raw):
            choice = (experts or {}).get(g, self.alternates[g][0])
            if len(self.alternates[g]) > 1:
                params[self.expert_param(g)] = choice
            for name in self.weight_params(g):
                params[name] = r
        return params
