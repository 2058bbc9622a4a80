"""``soup-search bench demo``: does the demo's win hold for other zoos?

For each zoo seed it builds (or reuses) the toy zoo of that seed, runs the demo config end to
end in its own run folder, and keeps the held-out comparison of the best soup with the three
rows the demo's claim is about: the best single expert (the expert with the highest *test*
mean, the hardest one to beat), the uniform soup of every candidate, and the paper grid's best.
Each difference comes with its paired 95% CI and p-value (:mod:`soup_search.analysis.paired`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from soup_search.analysis.paired import PairedDelta
from soup_search.config import RunConfig
from soup_search.pipeline.final_eval import ComparisonRow, RunResult
from soup_search.pipeline.progress import SILENT, Progress
from soup_search.pipeline.run import run_pipeline

#: the demo's claim: the best soup beats these rows by at least this much, with the CI above 0
MIN_WIN = 0.03
CLAIMED = ("best_expert", "uniform_all")


@dataclass(frozen=True)
class Versus:
    """The best soup against one row: the row's name and test mean, and the paired difference."""

    name: str
    test_mean: float
    vs: PairedDelta

    def to_json(self) -> dict:
        return {"name": self.name, "test_mean": self.test_mean, **self.vs.to_json()}


@dataclass(frozen=True)
class DemoSeed:
    """One zoo seed's demo run."""

    zoo_seed: int
    soup_test_mean: float
    versus: dict[str, Versus]  # best_expert, uniform_all, uniform_experts, grid_best
    seconds: float

    def holds(self) -> bool:
        """The demo's claim: beats the best expert and uniform_all by >= MIN_WIN with the CI
        lower bound above 0, and is not significantly worse than the grid's best."""
        wins = all(self.versus[k].vs.delta >= MIN_WIN and self.versus[k].vs.ci_low > 0 for k in CLAIMED)
        grid = self.versus.get("grid_best")
        return wins and (grid is None or grid.vs.ci_high >= 0)

    def to_json(self) -> dict:
        return {"zoo_seed": self.zoo_seed, "soup_test_mean": self.soup_test_mean, "holds": self.holds(),
                "seconds": self.seconds, "versus": {k: v.to_json() for k, v in self.versus.items()}}


def _versus(row: ComparisonRow) -> Versus:
    return Versus(name=row.name, test_mean=row.test_mean, vs=row.vs_best)


def versus_rows(result: RunResult) -> dict[str, Versus]:
    """The rows the claim is about, from one run's comparison."""
    rows = result.comparison[1:]
    experts = [r for r in rows if r.kind == "expert"]
    out = {"best_expert": _versus(max(experts, key=lambda r: r.test_mean))}
    for kind in ("uniform_all", "uniform_experts", "grid_best"):
        row = next((r for r in rows if r.kind == kind), None)
        if row is not None:
            out[kind] = _versus(row)
    return out


def with_zoo_seed(cfg: RunConfig, seed: int) -> RunConfig:
    """The config with another zoo seed (and a run name that says so)."""
    candidates = cfg.candidates.model_copy(update={"zoo_seed": seed})
    return cfg.model_copy(update={"candidates": candidates, "name": f"{cfg.name}-zoo{seed}"})


def run_demo_bench(cfg: RunConfig, zoo_seeds: Sequence[int], out: Path,
                   progress: Progress = SILENT) -> list[DemoSeed]:
    """Run the demo once per zoo seed, each in ``out/zoo-<seed>`` (started fresh)."""
    results = []
    for seed in zoo_seeds:
        start = time.perf_counter()
        result = run_pipeline(with_zoo_seed(cfg, seed), out / f"zoo-{seed}", progress, fresh=True)
        results.append(DemoSeed(zoo_seed=seed, soup_test_mean=result.best_row.test_mean,
                                versus=versus_rows(result), seconds=round(time.perf_counter() - start, 1)))
    return results


def to_json(results: Sequence[DemoSeed]) -> dict:
    return {"min_win": MIN_WIN, "holds_for_all": all(r.holds() for r in results),
            "seeds": [r.to_json() for r in results]}

