"""``tsv``: Task Singular Vectors merge, TSV-Merge (Gargiulo et al., CVPR 2025, arXiv 2412.00081).

Per tensor, with task vectors ``tau_i = w_i * (theta_i - theta_base)`` of the T models (the
base model is required and is not an input):

- a 2-D tensor (every linear weight, and the embeddings and ``lm_head``, as FusionBench does):
  1. SVD of each task vector, ``tau_i = U_i diag(s_i) V_i^T``; keep its top
     ``k = int(fraction * min(rows, cols))`` components;
  2. concatenate them: ``U = [U_1[:, :k] .. U_T[:, :k]]``, ``s = [s_1[:k] .. s_T[:k]]``, ``V`` likewise;
  3. decorrelate: replace ``U`` and ``V`` by the nearest matrices with orthonormal columns
     (orthogonal Procrustes: ``U = P Σ Q^T`` becomes ``P Q^T``);
  4. reconstruct ``tau = U diag(s) V^T``;
- any other tensor (norms, biases): the mean of the task vectors, ``sum_i tau_i / T``.

The result is ``theta_base + lambda * tau``. Parameters:

- ``weight`` (per model, default 1.0): scales the model's task vector before the SVD
  (FusionBench's ``alpha`` given as a list);
- ``fraction`` (global, default 1/T, the paper's and FusionBench's ``sv_reduction``): share of
  each task's singular components kept, in (0, 1]; ``k`` is rounded down as in FusionBench, so a
  matrix with ``min(rows, cols) < T`` gets ``k = 0`` and keeps the base's values;
- ``lambda`` (global, default 1.0, the paper's and FusionBench's ``alpha``): scale of the merged
  task vector, as in ``task_arithmetic``.

Mirrors ``compute_and_sum_svd_mem_reduction`` in FusionBench 0.2.33
(``fusion_bench/method/task_singular_vector/utils/TSVM_utils.py``), computed in float32.
Deviation: a task vector that is exactly zero for a tensor (a frozen tensor, a zero weight) is
left out of the SVD step, where FusionBench would orthogonalise its arbitrary singular vectors
together with the others'; it still counts in T. mergekit has no such method: ``to_yaml`` writes
the recipe as is, with a comment, for ``soup-search merge``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from soup_search.errors import MergeError
from soup_search.merge.method import MergeMethod
from soup_search.merge.params import ParamSpec, TensorParams
from soup_search.merge.task_vectors import merge_task_vectors

if TYPE_CHECKING:  # torch is imported where tensors are computed (a trial process never loads it)
    import torch


@dataclass(frozen=True)
class TSVPrepared:
    weights: tuple[float, ...]
    fraction: float
    lam: float


def orthonormalise(a: torch.Tensor) -> torch.Tensor:
    """The nearest matrix to ``a`` with orthonormal columns (rows when ``a`` is wide): ``P Q^T``
    for ``a = P Σ Q^T`` (orthogonal Procrustes)."""
    import torch
    p, _, qh = torch.linalg.svd(a, full_matrices=False)
    return p @ qh


def tsv_matrix(taus: list[torch.Tensor], k: int) -> torch.Tensor:
    """TSV-Merge of 2-D task vectors: top ``k`` components of each, decorrelated, summed."""
    import torch
    us, ss, vhs = [], [], []
    for tau in taus:
        if k == 0 or not bool(tau.any()):
            continue
        u, s, vh = torch.linalg.svd(tau, full_matrices=False)
        us.append(u[:, :k])
        ss.append(s[:k])
        vhs.append(vh[:k])
    if not ss:
        return torch.zeros_like(taus[0])
    u = orthonormalise(torch.cat(us, dim=1))
    vh = orthonormalise(torch.cat(vhs, dim=0))
    return (u * torch.cat(ss)) @ vh


@dataclass(frozen=True)
class TSVMerge(MergeMethod):
    name: str = "tsv"
    params: tuple = (
        ParamSpec("weight", float, "model", 1.0, help="scale of this model's task vector, before the SVD"),
        ParamSpec("fraction", float, "global", None, help="share of singular components kept per task (default 1/T)"),
        ParamSpec("lambda", float, "global", 1.0, help="scale of the merged task vector"),
    )
    base: str = "required"
    reference: str = "https://arxiv.org/abs/2412.00081"

    def to_mergekit(self, data: dict) -> tuple[dict, str]:
        return data, "mergekit has no 'tsv' merge method: run this recipe with soup-search merge"

    def prepare(self, params: TensorParams) -> TSVPrepared:
        n = len(params.keys)
        fraction = params.shared["fraction"]
        if fraction is None:
            fraction = 1.0 / n if n else 1.0
        elif not 0 < fraction <= 1:
            raise MergeError(f"tsv: fraction {fraction} for tensor {params.name!r} is outside (0, 1]; "
                             "use a share of singular components such as 0.25, or leave it out for 1/T")
        return TSVPrepared(tuple(params.column("weight")), fraction, params.shared["lambda"])

    def merge(self, prepared: TSVPrepared, tensors, base):
        k = int(min(base.shape) * prepared.fraction) if base.dim() == 2 else 0
        return merge_task_vectors(tensors, base, prepared.weights, prepared.lam, lambda taus: tsv_matrix(taus, k))


tsv = TSVMerge()
