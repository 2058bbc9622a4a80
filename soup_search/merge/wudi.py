"""``wudi``: WUDI merging, "Whoever Started the Interference Should End It" (Cheng et al., ICML 2025,
arXiv 2503.08099).

Per tensor, with task vectors ``tau_i = w_i * (theta_i - theta_base)`` of the T models (the
base model is required and is not an input):

- a 2-D tensor (every linear weight, and the embeddings and ``lm_head``, as FusionBench does):
  the merged task vector minimises the paper's data-free interference bound

      L(tau) = sum_i ||(tau - tau_i) tau_i^T||_F^2 / ||tau_i||_F^2

  by ``torch.optim.Adam`` (betas 0.9, 0.999, eps 1e-8, no weight decay) for ``steps`` iterations at
  learning rate ``lr``, starting from ``sum_i tau_i``. The gradient is computed in closed form,
  ``2 (tau G - B)`` with ``G_i = tau_i^T tau_i / ||tau_i||^2``, ``G = sum_i G_i`` and
  ``B = sum_i tau_i G_i``, in float64 (see :func:`wudi_matrix`); deterministic on the CPU;
- any other tensor (norms, biases): the mean of the task vectors, ``sum_i tau_i / T``.

The result is ``theta_base + lambda * tau``. Parameters:

- ``weight`` (per model, default 1.0): scales the model's task vector (``tau`` is then pulled
  towards ``w_i tau_i`` on ``tau_i``'s input subspace);
- ``steps`` (global, default 300: the paper's, and FusionBench's function default; its YAML
  config uses 400): Adam iterations, a whole number >= 0 (0 gives ``sum_i tau_i`` for 2-D tensors);
- ``lr`` (global, default 1e-5, the paper's and FusionBench's): Adam's learning rate, > 0;
- ``lambda`` (global, default 1.0; neither the paper nor FusionBench rescales): scale of the
  merged task vector, as in ``task_arithmetic``.

Mirrors ``wudi_merging`` in FusionBench 0.2.33 (``fusion_bench/method/wudi/wudi.py``: float32,
autograd, ``torch.optim.Adam``). The authors' ViT code divides by ``||tau_i||`` rather than its
square and optimises only the attention and MLP weights; the paper's equation and FusionBench
square it, as here. Deviation: a task vector that is exactly zero for a tensor (a frozen tensor,
a zero weight) is left out of the loss, where FusionBench divides by its zero norm (NaN).
Adam moves an entry by about ``lr`` per step at most, so at the defaults ``tau`` stays within
~3e-3 of the sum, entry by entry. Memory: four float64 copies of the tensor and one
``cols x cols`` matrix, one tensor at a time. mergekit has no such method: ``to_yaml`` writes the
recipe as is, with a comment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from soup_search.errors import MergeError
from soup_search.merge.method import MergeMethod
from soup_search.merge.params import ParamSpec, TensorParams
from soup_search.merge.task_vectors import merge_task_vectors

if TYPE_CHECKING:  # torch is imported where tensors are computed (a trial process never loads it)
    import torch

ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, which the paper's code and FusionBench use
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class WUDIPrepared:
    weights: tuple[float, ...]
    steps: int
    lr: float
    lam: float


def wudi_loss(tau: torch.Tensor, taus: list[torch.Tensor]) -> float:
    """The paper's objective ``sum_i ||(tau - tau_i) tau_i^T||^2 / ||tau_i||^2`` (zero task vectors skipped)."""
    return sum(float(((tau - t) @ t.T).square().sum() / t.square().sum()) for t in taus if bool(t.any()))


def wudi_matrix(taus: list[torch.Tensor], steps: int, lr: float) -> torch.Tensor:
    """WUDI's merged task vector of 2-D task vectors: Adam on :func:`wudi_loss` from their sum.

    Runs in float64 and returns float32: Adam divides each gradient entry by its own running
    size, so float32 rounding noise in a gradient that is zero in exact arithmetic (task vectors
    that do not interfere) would move that entry by ``lr`` per step.
    """
    import torch
    merged = torch.stack(taus).sum(dim=0)
    taus = [t.double() for t in taus if bool(t.any())]
    if not taus or steps == 0:
        return merged
    merged = merged.double()
    grams = [t.T @ t / t.square().sum() for t in taus]
    gram = torch.stack(grams).sum(dim=0)
    target = torch.stack([t @ g for t, g in zip(taus, grams)]).sum(dim=0)
    opt = torch.optim.Adam([merged], lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    for _ in range(steps):
        merged.grad = torch.addmm(target, merged, gram, alpha=2, beta=-2)  # 2 (tau G - B), no autograd
        opt.step()
    return merged.float()


@dataclass(frozen=True)
class WUDIMerge(MergeMethod):
    name: str = "wudi"
    params: tuple = (
        ParamSpec("weight", float, "model", 1.0, help="scale of this model's task vector"),
        ParamSpec("steps", float, "global", 300, help="Adam iterations per 2-D tensor"),
        ParamSpec("lr", float, "global", 1e-5, help="Adam learning rate"),
        ParamSpec("lambda", float, "global", 1.0, help="scale of the merged task vector"),
    )
    base: str = "required"
    reference: str = "https://arxiv.org/abs/2503.08099"

    def to_mergekit(self, data: dict) -> tuple[dict, str]:
        return data, "mergekit has no 'wudi' merge method: run this recipe with soup-search merge"

    def prepare(self, params: TensorParams) -> WUDIPrepared:
        steps, lr = params.shared["steps"], params.shared["lr"]
        if not (math.isfinite(steps) and steps >= 0 and steps == int(steps)):
            raise MergeError(f"wudi: steps {steps} for tensor {params.name!r} is not a whole number >= 0; "
                             "use e.g. steps: 300")
        if not (math.isfinite(lr) and lr > 0):
            raise MergeError(f"wudi: lr {lr} for tensor {params.name!r} is not a positive number; use e.g. lr: 1.0e-5")
        return WUDIPrepared(tuple(params.column("weight")), int(steps), lr, params.shared["lambda"])

    def merge(self, prepared: WUDIPrepared, tensors, base):
        return merge_task_vectors(tensors, base, prepared.weights, prepared.lam,
                                  lambda taus: wudi_matrix(taus, prepared.steps, prepared.lr))


wudi = WUDIMerge()
