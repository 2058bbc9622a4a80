"""Continued training of a recurrent model with a recurrence curriculum, seeded and deterministic.

The zoo's loop (:mod:`soup_search.zoo.train`) with one addition: before each step the
curriculum gives the mean, and the number of recurrences of that step is drawn from it.
Batches come from the same seeded generator as the zoo's ``train``, and the recurrence draws
from a second one, so a non-recurrent control trained by ``zoo.train.train`` with the same
seed sees exactly the same batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from soup_search.recur.curriculum import Curriculum, sample_recurrences
from soup_search.zoo.train import CategoryData, lr_at


@dataclass(frozen=True)
class TrainSettings:
    """The optimiser and schedule of a continued-training run (AdamW, warmup, cosine to ``floor``)."""

    steps: int
    lr: float = 1e-3
    batch_size: int = 64
    warmup: float = 0.05
    floor: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class TrainLog:
    """Per step: the scheduled mean, the drawn recurrences and the loss; and the wall time."""

    means: tuple[float, ...]
    recurrences: tuple[int, ...]
    losses: tuple[float, ...]
    seconds: float

    @property
    def final_loss(self) -> float:
        """The mean loss of the last 10% of the steps."""
        tail = self.losses[-max(1, len(self.losses) // 10):]
        return sum(tail) / len(tail)

    def to_json(self) -> dict:
        return {"final_loss": round(self.final_loss, 5), "seconds": round(self.seconds, 2),
                "mean_recurrences_drawn": round(sum(self.recurrences) / len(self.recurrences), 3),
                "max_recurrences_drawn": max(self.recurrences), "means": [round(m, 4) for m in self.means],
                "recurrences": list(self.recurrences), "losses": [round(x, 5) for x in self.losses]}


def uniform_mixture(data: CategoryData) -> dict[str, float]:
    """Every category of ``data`` equally often (how the zoo's base was trained)."""
    return {c: 1.0 for c in data.categories}


def train_recurrent(model, data: CategoryData, curriculum: Curriculum, settings: TrainSettings,
                    mixture: Mapping[str, float] | None = None,
                    on_step: Callable[[int, float], None] | None = None) -> TrainLog:
    """Train ``model`` (a recurrent LM) in place; returns the per-step log."""
    start = time.perf_counter()
    batches = torch.Generator().manual_seed(settings.seed)
    draws = torch.Generator().manual_seed(settings.seed + 1)
    torch.manual_seed(settings.seed)  # the initial-state noise
    mixture = dict(mixture or uniform_mixture(data))
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0, betas=(0.9, 0.98))
    means, recurrences, losses = [], [], []
    model.train()
    for step in range(settings.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, settings.steps, settings.lr, settings.warmup, settings.floor)
        mean = curriculum.mean_at(step, settings.steps)
        r = sample_recurrences(mean, draws)
        ids, labels, mask = data.batch(mixture, settings.batch_size, batches)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels, num_recurrences=r).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        means.append(mean)
        recurrences.append(r)
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return TrainLog(tuple(means), tuple(recurrences), tuple(losses), time.perf_counter() - start)
