"""The merges of a curve, as recipes: an interpolation sweep (over λ, or λ_attn × λ_mlp) or a
reasoning vector's α curve. Model keys are candidate names; ``names`` maps each role to one.

- ``sweep``: ``interpolate`` with ``lambda = λ``: ``λ·θ_a + (1 − λ)·θ_b``.
- ``module_grid``: ``interpolate`` with ``lambda = {attention: λ_attn, mlp: λ_mlp, default: (λ_attn + λ_mlp) / 2}``:
  the embeddings, norms and lm_head take the mean of the two, so the grid's diagonal is the sweep.
- ``transfer``: ``task_arithmetic`` with base ``target`` and weights ``+α`` for ``plus`` and ``−α``
  for ``minus``: ``θ_target + α·(θ_plus − θ_minus)``; α = 0 is the target itself, α < 0 the ablation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from soup_search.merge import MergeRecipe
from soup_search.pipeline.category_scores import single_recipe


@dataclass(frozen=True)
class Family:
    """What a curve scores: each point's coefficients (``axes`` -> value) and its recipe."""

    kind: str
    axes: tuple[str, ...]
    names: dict[str, str]
    points: tuple[tuple[dict[str, float], MergeRecipe], ...]

    def references(self) -> dict[str, MergeRecipe]:
        """Each role's model alone (the recipe profiling scores it by, so the cache is shared)."""
        return {role: single_recipe(name) for role, name in self.names.items()}


def _round(x: float) -> float:
    return float(f"{x:.12g}") + 0.0  # (no -0.0)


def interpolation(names: dict[str, str], lam) -> MergeRecipe:
    """``λ·θ_a + (1 − λ)·θ_b`` (``lam``: a number or a module-group mapping)."""
    return MergeRecipe.model_validate({
        "models": [{"model": names["a"]}, {"model": names["b"]}],
        "merge_method": "interpolate", "parameters": {"lambda": lam}})


def sweep_family(names: dict[str, str], lambdas: Sequence[float]) -> Family:
    return Family("sweep", ("lambda",), dict(names),
                  tuple(({"lambda": lam}, interpolation(names, lam)) for lam in lambdas))


def module_grid_family(names: dict[str, str], lambdas: Sequence[float]) -> Family:
    """Every (λ_attn, λ_mlp) of ``lambdas`` × ``lambdas``; the other groups take their mean."""
    points = []
    for attn in lambdas:
        for mlp in lambdas:
            lam = {"attention": attn, "mlp": mlp, "default": _round((attn + mlp) / 2)}
            points.append(({"lambda_attn": attn, "lambda_mlp": mlp}, interpolation(names, lam)))
    return Family("module_grid", ("lambda_attn", "lambda_mlp"), dict(names), tuple(points))


def vector_transfer(names: dict[str, str], alpha: float) -> MergeRecipe:
    """``θ_target + α·(θ_plus − θ_minus)`` (a model that is also the target adds a zero vector)."""
    return MergeRecipe.model_validate({
        "models": [{"model": names["plus"], "parameters": {"weight": alpha}},
                   {"model": names["minus"], "parameters": {"weight": _round(-alpha)}}],
        "merge_method": "task_arithmetic", "base_model": names["target"], "parameters": {"normalize": False}})


def transfer_family(names: dict[str, str], alphas: Sequence[float]) -> Family:
    return Family("transfer", ("alpha",), dict(names),
                  tuple(({"alpha": alpha}, vector_transfer(names, alpha)) for alpha in alphas))
