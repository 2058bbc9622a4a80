"""The frame that ``tsv`` and ``wudi`` share: weighted task vectors against the base, a matrix merge
for 2-D tensors, their mean for the others, scaled by ``lambda`` and added back to the base."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where tensors are computed (a trial process never loads it)
    import torch


def merge_task_vectors(tensors: Sequence[torch.Tensor], base: torch.Tensor, weights: Sequence[float], lam: float,
                       merge_matrix: Callable[[list[torch.Tensor]], torch.Tensor]) -> torch.Tensor:
    """``base + lam * merged``, ``merged`` being ``merge_matrix`` of the task vectors
    ``w_i * (t_i - base)`` for a 2-D tensor, and their mean for any other (float32)."""
    import torch
    base32 = base.to(torch.float32)
    if not tensors:
        return base32.clone()
    taus = [torch.sub(t, base32).mul_(w) for t, w in zip(tensors, weights)]
    merged = merge_matrix(taus) if base.dim() == 2 else torch.stack(taus).mean(dim=0)
    return merged.mul_(lam).add_(base32)
