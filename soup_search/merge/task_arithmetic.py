"""``task_arithmetic``: ``theta_base + lambda * sum(w_i * (theta_i - theta_base)) [/ sum(w_i)]``.

Mirrors ``GeneralizedTaskArithmeticMerge`` in ``mergekit/merge_methods/generalized_task_arithmetic.py``
and its ``task_arithmetic`` instance in ``mergekit/merge_methods/registry.py`` (mergekit 0.1.5):

- ``base_model`` is required. It is not a task vector: when it is also listed in ``models``
  its per-model parameters are ignored (mergekit's NON_BASE scope) and it needs no weight.
- Per model: ``weight`` (required, no default), ``density`` (default 1.0; read but unused
  without sparsification). Global: ``normalize`` (default **false** here, true for ties),
  ``lambda`` (default 1.0), ``rescale`` (default false), ``int8_mask`` (default false; a
  memory option of mergekit with no numerical effect, ignored).
- With only the base as input the result is the base.

With ``normalize`` off this is the linear combination
``sum(c_i * theta_i) + (1 - sum(c_i)) * theta_base`` with ``c_i = lambda * w_i``, which is how
it is computed (``n + 1`` fused passes instead of ``2n``; identical up to float32 rounding).
So ``reasoning_vector`` (``theta_t + alpha * (theta_a - theta_b)``) is base ``t`` with weights
``+alpha`` for ``a`` and ``-alpha`` for ``b``.

Deviation: a weight sum of zero with ``normalize: true`` is silently left undivided in
mergekit (divisor set to 1); here it is refused with a MergeError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from soup_search.errors import MergeError
from soup_search.merge.method import ZERO_SUM, MergeMethod, weighted_sum
from soup_search.merge.params import ParamSpec, TensorParams


@dataclass(frozen=True)
class GTAPrepared:
    """What one tensor needs: weights, densities, and the global switches."""

    weights: tuple[float, ...]
    densities: tuple[float, ...]
    normalize: bool
    lam: float
    rescale: bool
    coeffs: tuple[float, ...] = ()  # linear form (no consensus): c_i and the base's coefficient
    base_coeff: float = 1.0


@dataclass(frozen=True)
class GeneralizedTaskArithmetic(MergeMethod):
    """Task vectors against a base, optionally sparsified and sign-elected (TIES)."""

    name: str = "task_arithmetic"
    default_normalize: bool = False
    consensus: str | None = None  # "sum" (TIES) or None
    sparsify: Callable | None = None  # (delta, density, rescale) -> delta
    base: str = "required"
    reference: str = "https://arxiv.org/abs/2212.04089"

    @property
    def params(self) -> tuple[ParamSpec, ...]:
        return (
            ParamSpec("weight", float, "model", help="scale of this model's task vector"),
            ParamSpec("density", float, "model", 1.0, help="fraction of the task vector kept"),
            ParamSpec("normalize", bool, "global", self.default_normalize, help="divide by summed weights"),
            ParamSpec("lambda", float, "global", 1.0, help="scale of the merged task vector"),
            ParamSpec("rescale", bool, "global", False, help="L1-rescale sparsified task vectors"),
            ParamSpec("int8_mask", bool, "global", False, help="mergekit memory option; ignored"),
        )

    def prepare(self, params: TensorParams) -> GTAPrepared:
        weights = tuple(params.column("weight"))
        prepared = GTAPrepared(weights, tuple(params.column("density")), params.shared["normalize"],
                               params.shared["lambda"], params.shared["rescale"])
        total = sum(weights)
        if prepared.normalize and weights and abs(total) < ZERO_SUM:
            raise MergeError(
                f"{self.name}: weights {list(weights)} for tensor {params.name!r} sum to zero with "
                "normalize: true; change the weights or set normalize: false")
        if self._is_linear:
            scale = prepared.lam / total if prepared.normalize else prepared.lam
            coeffs = tuple(scale * w for w in weights)
            return replace(prepared, coeffs=coeffs, base_coeff=1.0 - sum(coeffs))
        return prepared

    @property
    def _is_linear(self) -> bool:
        """Without sign election or sparsification the merge is a weighted sum."""
        return self.consensus is None and self.sparsify is None

    def linear_form(self, prepared: GTAPrepared):
        if not self._is_linear or not prepared.weights:
            return None  # only the base: merge() copies it
        return prepared.coeffs, prepared.base_coeff

    def merge(self, prepared: GTAPrepared, tensors, base):
        import torch
        if not tensors:
            return base.to(torch.float32, copy=True)
        if self._is_linear:
            return weighted_sum(tensors, prepared.coeffs, base, prepared.base_coeff)
        base32 = base.to(torch.float32)
        deltas = torch.empty((len(tensors), *base.shape), dtype=torch.float32, device=base.device)
        for i, t in enumerate(tensors):
            torch.sub(t, base32, out=deltas[i])
            if self.sparsify is not None:
                deltas[i] = self.sparsify(deltas[i], prepared.densities[i], prepared.rescale)
        w = torch.tensor(prepared.weights, dtype=torch.float32, device=base.device)
        w = w.view(-1, *([1] * base.dim()))
        deltas.mul_(w)
        if self.consensus is not None:
            mask = sign_consensus(deltas)
            mixed = (deltas * mask).sum(dim=0)
            divisor = (w * mask).sum(dim=0)
            divisor[divisor == 0] = 1
        else:
            mixed = deltas.sum(dim=0)
            divisor = w.sum(dim=0)
            divisor[divisor.abs() < ZERO_SUM] = 1
        if prepared.normalize:
            mixed /= divisor
        if prepared.lam != 1:
            mixed *= prepared.lam
        return mixed.add_(base32)


def sign_consensus(weighted_deltas):
    """TIES sign election, mergekit's "sum" rule: the sign of ``sum_i w_i * delta_i`` (ties go +).

    Returns a boolean mask of the entries whose sign agrees with the elected one; zeros
    (pruned entries) never agree.
    """
    majority = (weighted_deltas.sum(dim=0) >= 0).to(weighted_deltas.dtype) * 2 - 1
    return weighted_deltas.sign() == majority


task_arithmetic = GeneralizedTaskArithmetic()
