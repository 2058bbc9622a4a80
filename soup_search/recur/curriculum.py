"""The recurrence curriculum: the mean number of recurrences at each training step, and the draw.

``--curriculum`` takes one of:

- ``linear:START:END[:RAMP]``: the mean rises linearly from START to END over the first RAMP
  share of the steps (default 0.5), then stays at END;
- ``1-sqrt:START:END[:RAMP]``: the same rise shaped ``1 - sqrt(1 - t)`` (slow, then fast),
  the paper's other schedule;
- ``constant:N`` or ``N``: no curriculum, the mean is N throughout;
- ``A,B,C,...``: equal stages of the run with means A, then B, then C, ...

Means may be fractional and must be >= 1. Each step draws its own number of recurrences
``r = 1 + Poisson(λ)`` with ``λ ~ LogNormal`` of mean ``mean - 1`` and σ = 0.5 (Huginn's
Poisson-log-normal), so ``E[r]`` is the scheduled mean and ``r >= 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from soup_search.errors import ConfigError

#: σ of the log-normal rate (Huginn's and the paper's value)
SIGMA = 0.5
DEFAULT_RAMP = 0.5
_SHAPES = ("linear", "1-sqrt")
_HELP = "use linear:1:4, 1-sqrt:1:4:0.5, constant:4 or a list such as 1,2,3,4"


@dataclass(frozen=True)
class Curriculum:
    """A schedule of mean recurrences over a run: a ramp (``shape``) or equal stages (``stages``)."""

    shape: str  # "linear", "1-sqrt" or "stages"
    start: float = 1.0
    end: float = 1.0
    ramp: float = DEFAULT_RAMP
    stages: tuple[float, ...] = ()

    def mean_at(self, step: int, steps: int) -> float:
        """The mean recurrence count at ``step`` (0-based) of a ``steps``-step run."""
        t = step / max(1, steps)
        if self.shape == "stages":
            return self.stages[min(len(self.stages) - 1, int(t * len(self.stages)))]
        progress = min(1.0, t / self.ramp)
        if self.shape == "1-sqrt":
            progress = 1.0 - math.sqrt(1.0 - progress)
        return self.start + (self.end - self.start) * progress

    @property
    def final(self) -> float:
        """The mean at the end of the run."""
        return self.stages[-1] if self.shape == "stages" else self.end

    def describe(self) -> str:
        if self.shape == "stages":
            return "stages " + ", ".join(f"{m:g}" for m in self.stages)
        return f"{self.shape} {self.start:g} → {self.end:g} over the first {self.ramp:.0%} of the steps"


def parse_curriculum(text: str) -> Curriculum:
    """The :class:`Curriculum` of a ``--curriculum`` value; a one-line error when it does not parse."""
    spec = text.strip()
    head, _, rest = spec.partition(":")
    try:
        if head in _SHAPES:
            values = [float(v) for v in rest.split(":")]
            if len(values) not in (2, 3):
                raise ValueError
            start, end, ramp = (*values, DEFAULT_RAMP)[:3]
            if not 0 < ramp <= 1:
                raise ConfigError("--curriculum", [f"{spec!r}: RAMP must be in (0, 1], got {ramp:g}; {_HELP}"])
            curriculum = Curriculum(head, start=start, end=end, ramp=ramp)
            means = (start, end)
        else:
            if head == "constant":
                spec_means = [float(rest)]
            else:
                spec_means = [float(v) for v in spec.split(",")]
            curriculum = Curriculum("stages", stages=tuple(spec_means))
            means = tuple(spec_means)
    except ValueError:
        raise ConfigError("--curriculum", [f"{spec!r} does not parse; {_HELP}"]) from None
    if not all(math.isfinite(m) and m >= 1 for m in means):
        raise ConfigError("--curriculum", [f"{spec!r}: every mean must be a number >= 1; {_HELP}"])
    return curriculum


def sample_recurrences(mean: float, gen: torch.Generator) -> int:
    """One draw of the number of recurrences, ``1 + Poisson(LogNormal)`` with expectation ``mean``."""
    extra = mean - 1.0
    if extra <= 0:
        return 1
    mu = math.log(extra) - SIGMA**2 / 2
    rate = math.exp(mu + SIGMA * torch.randn((), generator=gen).item())
    return 1 + int(torch.poisson(torch.tensor([rate]), generator=gen).item())
