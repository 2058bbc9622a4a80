"""The contract every merge method meets, and the float32 weighted sum most of them reduce to.

A method is a configured instance (see :mod:`soup_search.merge.registry`), not a subclass
tree: it declares its parameters and how it treats ``base_model``, turns the parameters
resolved for one tensor name into a small precomputed value, its *prepared* form
(:meth:`MergeMethod.prepare`, cached per tensor name, where bad weights are refused), and
merges tensors with it (:meth:`MergeMethod.merge`, the hot path: float32 accumulation with
in-place torch ops). A method whose merge is a weighted sum says so with
:meth:`MergeMethod.linear_form`; the fast paths (shard actors, the disk-to-disk merge) ask
only that. A *whole-model* method (``whole_model = True``: fda) needs forward and backward
passes through whole models instead: it merges by :meth:`MergeMethod.merge_checkpoints`, which
only ``soup-search merge`` calls, and its per-tensor ``prepare`` refuses in one line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soup_search.merge.params import ParamSpec, TensorParams

if TYPE_CHECKING:  # torch is imported where tensors are computed (a trial process never loads it)
    import torch

ZERO_SUM = 1e-8  # mergekit's threshold for a zero weight sum (generalized_task_arithmetic.py)


class MergeMethod(ABC):
    """A named merge method.

    ``base`` says how ``base_model`` is used: "required" (task vectors are taken against it;
    it is not one of the inputs), "input" (mergekit adds it to the inputs when it is not
    listed in ``models``; it is merged like any other model) or "forbidden".
    """

    name: str
    params: tuple[ParamSpec, ...]
    base: str = "input"
    num_models: int | None = None  # exact number of models, if the method fixes it
    ordered: bool = False  # whether the order of ``models`` changes the result
    whole_model: bool = False  # merges whole models (merge_checkpoints), never tensor by tensor
    reference: str = ""

    def canonical_parameters(self, parameters: dict) -> tuple[dict, list[str]]:
        """Rewrite method-specific shorthands of the top-level parameters; returns (params, problems)."""
        return parameters, []

    def to_mergekit(self, data: dict) -> tuple[dict, str]:
        """The mergekit YAML dict for a recipe dict, and a comment line ("" if none)."""
        return data, ""

    @abstractmethod
    def prepare(self, params: TensorParams) -> Any:
        """Precompute what :meth:`merge` needs for one tensor (its *prepared* form); raise
        MergeError on bad weights."""

    @abstractmethod
    def merge(self, prepared: Any, tensors: Sequence[torch.Tensor], base: torch.Tensor | None) -> torch.Tensor:
        """Merge one tensor per input (``params.keys`` order) with ``prepared``; returns float32."""

    def merge_checkpoints(self, recipe, paths: Mapping[str, Path]) -> dict[str, torch.Tensor]:
        """Whole-model methods only: the merged float32 state dict of the recipe's checkpoints
        (model key -> directory)."""
        raise NotImplementedError(f"{self.name} merges tensor by tensor")

    def linear_form(self, prepared: Any) -> tuple[tuple[float, ...], float] | None:
        """``(coeffs, base_coeff)`` when :meth:`merge` with ``prepared`` is exactly
        ``weighted_sum(tensors, coeffs, base, base_coeff)``, else None (the default).

        ``coeffs`` align with the inputs; ``base_coeff`` is 0 for a method without a base.
        The fast paths (shard actors, the disk-to-disk merge) use only this to decide
        whether they may compute the merge as a blocked weighted sum.
        """
        return None


def weighted_sum(tensors: Sequence[torch.Tensor], coeffs: Sequence[float],
                 base: torch.Tensor | None = None, base_coeff: float = 0.0) -> torch.Tensor:
    """float32 ``sum(c_i * t_i) + base_coeff * base`` on the tensors' device.

    Zero coefficients are skipped (that model's tensor is not touched), so a zero weight in
    a soup costs nothing.
    """
    import torch
    terms = [(t, c) for t, c in zip(tensors, coeffs) if c != 0]
    if base is not None and base_coeff != 0:
        terms.append((base, base_coeff))
    if not terms:
        ref = tensors[0] if len(tensors) else base
        return torch.zeros(ref.shape, dtype=torch.float32, device=ref.device)
    first, c0 = terms[0]
    if first.dtype == torch.float32:
        out = torch.mul(first, c0)
    else:
        out = first.to(torch.float32).mul_(c0)
    for t, c in terms[1:]:
        out.add_(t, alpha=c)  # a bf16/f16 t is upcast elementwise into the float32 buffer
    return out
