"""``ties``: trim, elect sign, disjoint merge (TIES-Merging, arXiv 2306.01708).

Mirrors mergekit's ``ties`` instance of ``GeneralizedTaskArithmeticMerge``
(``mergekit/merge_methods/registry.py``: consensus "sum", sparsification "magnitude",
normalize default **true**, rescale default false) and ``magnitude`` in ``mergekit/sparsify.py``:

1. per model, ``delta_i = theta_i - theta_base``; keep its top ``density`` fraction by
   magnitude over the whole tensor: ``k = max(1, int(density * numel))`` (density >= 1 keeps
   all, <= 0 keeps none); with ``rescale: true`` the kept part is scaled to the L1 norm of
   the whole delta (skipped when either norm is below 1e-7);
2. weight: ``delta_i *= w_i``;
3. elect the sign of ``sum_i w_i delta_i`` per element (ties count as +);
4. sum the weighted deltas whose sign agrees; with ``normalize`` divide by the summed
   weights of the agreeing entries (1 where none agree);
5. multiply by ``lambda`` (default 1) and add the base.

``density`` defaults to 1.0 (as in mergekit), which keeps every entry. The base model is
not an input (see :mod:`soup_search.merge.task_arithmetic`). Which of several entries of
exactly equal magnitude survive the cut may differ from mergekit (both sort by magnitude;
neither is stable). Deviation: a zero weight sum with ``normalize: true`` is refused.
"""

from __future__ import annotations

from soup_search.merge.task_arithmetic import GeneralizedTaskArithmetic

RESCALE_EPS = 1e-7


def magnitude(delta, density: float, rescale: bool = False):
    """Keep the ``density`` fraction of ``delta`` with the largest magnitude, zero the rest."""
    import torch
    if density >= 1:
        return delta
    numel = delta.numel()
    if density <= 0 or numel == 0:
        return torch.zeros_like(delta)
    k = max(1, int(density * numel))
    keep = delta.abs().reshape(-1).topk(k, sorted=False).indices
    mask = torch.zeros(numel, dtype=delta.dtype, device=delta.device)
    mask[keep] = 1
    masked = delta * mask.view_as(delta)
    if rescale:
        before, after = delta.abs().sum(), masked.abs().sum()
        if before >= RESCALE_EPS and after >= RESCALE_EPS:
            masked *= before / after
    return masked


ties = GeneralizedTaskArithmetic(
    name="ties",
    default_normalize=True,
    consensus="sum",
    sparsify=magnitude,
    reference="https://arxiv.org/abs/2306.01708",
)
