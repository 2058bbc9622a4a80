"""Merging checkpoints: mergekit-format recipes, per-tensor merge methods, disk-to-disk merges.

The per-tensor API (:func:`merge_tensor`, :func:`output_dtype`) is what shard actors call
per tensor per trial; :func:`soup_search.merge.stream.merge_to_disk` merges whole
checkpoints tensor by tensor. Methods: ``linear``, ``task_arithmetic``, ``ties`` (same
semantics and defaults as mergekit 0.1.5), ``tsv`` and ``wudi`` (as FusionBench 0.2.33) and ``interpolate``;
``fda`` (functional dual anchors) merges whole models, through ``merge_to_disk`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from soup_search.merge.method import MergeMethod
from soup_search.merge.plan import MergePlan
from soup_search.merge.recipe import MergeRecipe, ModelEntry
from soup_search.merge.registry import METHODS, get_method

if TYPE_CHECKING:  # torch is imported where tensors are computed (a trial process never loads it)
    import torch

__all__ = [
    "METHODS", "MergeMethod", "MergePlan", "MergeRecipe", "ModelEntry", "get_method", "merge_tensor",
    "output_dtype", "reasoning_vector",
]

def merge_tensor(recipe: MergeRecipe, name: str, tensors: Mapping[str, torch.Tensor],
                 base: torch.Tensor | None = None, *, num_layers: int | None = None) -> torch.Tensor:
    """Merge one tensor: ``tensors`` maps each model key of the recipe to its tensor ``name``.

    ``base`` is the base model's tensor (else taken from ``tensors[recipe.base_model]``).
    Accumulates in float32 on the tensors' device and returns float32; cast with
    :func:`output_dtype`. ``num_layers`` (config ``num_hidden_layers``) is needed only by
    recipes with gradient parameters. Parameters are resolved once per tensor name and
    cached on the recipe.
    """
    return recipe.plan(num_layers).merge(name, tensors, base)


def output_dtype(recipe: MergeRecipe, input_dtype: torch.dtype) -> torch.dtype:
    """The dtype to write: the recipe's ``out_dtype``, else ``dtype``, else ``input_dtype``."""
    import torch
    name = recipe.out_dtype or recipe.dtype
    return getattr(torch, name) if name else input_dtype


def reasoning_vector(target: str, a: str, b: str, alpha: float = 1.0, dtype: str | None = None) -> MergeRecipe:
    """``theta_target + alpha * (theta_a - theta_b)`` as an exact mergekit ``task_arithmetic`` recipe.

    Form: ``base_model: target``, models ``a`` (weight ``+alpha``) and ``b`` (weight ``-alpha``),
    ``normalize: false``, ``lambda: 1`` -- task arithmetic gives
    ``target + alpha*(a - target) - alpha*(b - target) = target + alpha*(a - b)``. The target is
    listed in ``models`` too (mergekit ignores the base's parameters). When ``a`` or ``b`` is the
    target its task vector is zero and it is left out. (Equivalently ``base_model: b`` with
    weights 1 for the target and ``alpha`` for ``a``; the form above keeps the target as base.)
    """
    models = [{"model": target}]
    weights: dict[str, float] = {}
    for key, w in ((a, alpha), (b, -alpha)):
        if key != target:
            weights[key] = weights.get(key, 0.0) + w
    models += [{"model": k, "parameters": {"weight": w}} for k, w in weights.items()]
    data = {"models": models, "merge_method": "task_arithmetic", "base_model": target,
            "parameters": {"normalize": False, "lambda": 1.0}}
    if dtype:
        data["dtype"] = dtype
    return MergeRecipe.model_validate(data)
