"""``soup-search bench startup``: where a run's start-up goes, from Ray's start to its first trial.

It runs a config (the demo's by default) with a few search trials and no grid, ``repeats``
times, each on a private Ray instance of its own started by the run, and reads the stages back
from the run itself:

- ``before_ray``: the command up to Ray's start (config, candidates, the prompt check);
- ``actors``: Ray's start, then the run store, the scorers (import torch and transformers, build
  the model) and the shard actors (import torch, load their slices of every checkpoint);
- ``profile``: scoring every candidate on dev (the score cache answers after the first repeat);
- ``to_first_trial``: the search's start to its first trial (Tune, the trial processes starting
  and importing what a trial needs).

The **start-up** is Ray's start to the first trial, less the profile's scoring (work, not
start-up). The first repeat also gives the command's own start (Python importing soup-search,
torch, transformers, Ray) to its first trial.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from soup_search.analysis.intervals import mean_interval
from soup_search.config import RunConfig
from soup_search.engine.run_store import read_evaluations
from soup_search.pipeline.run import run_pipeline

#: search trials per repeat: enough to see the first one start
TRIALS = 3


@dataclass(frozen=True)
class Startup:
    """One repeat's stages, in seconds."""

    before_ray: float
    actors: float
    profile: float
    to_first_trial: float

    @property
    def startup(self) -> float:
        """Ray's start to the first trial, less the profile."""
        return self.actors + self.to_first_trial


@dataclass(frozen=True)
class StartupBench:
    repeats: list[Startup]
    #: the first repeat: the process's start (imports included) to the first trial
    process_to_first_trial: float

    def interval(self, stage: str) -> tuple[float, float, float]:
        """(mean, low, high) of a stage over the repeats (Student's t, 95%)."""
        values = [getattr(r, stage) for r in self.repeats]
        low, high = mean_interval(values)
        return sum(values) / len(values), low, high

    def to_json(self) -> dict:
        stages = ("before_ray", "actors", "profile", "to_first_trial", "startup")
        return {"repeats": [asdict(r) | {"startup": r.startup} for r in self.repeats],
                "process_to_first_trial": self.process_to_first_trial,
                "mean": {s: dict(zip(("mean", "ci_low", "ci_high"), self.interval(s))) for s in stages}}


def startup_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` with a few search trials and no grid (the first trial is what counts)."""
    search = cfg.search.model_copy(update={"n_trials": TRIALS, "grid": False})
    return cfg.model_copy(update={"search": search})


def one_startup(cfg: RunConfig, out: Path) -> tuple[Startup, float]:
    """Run ``cfg`` into ``out``; its stages and the wall-clock time its first search trial started."""
    start = time.time()
    result = run_pipeline(cfg, out, fresh=True)
    first = min(r["timings"]["started"] for r in read_evaluations(out / "state" / "run.sqlite", "search"))
    t = result.timings
    before_ray = t["candidates"]
    return Startup(before_ray=before_ray, actors=t["actors"], profile=t["profile_analyze"],
                   to_first_trial=first - start - before_ray - t["actors"] - t["profile_analyze"]), first


def run_startup_bench(cfg: RunConfig, repeats: int = 3, stop_ray: Callable[[], None] = lambda: None,
                      on_repeat: Callable[[int, Startup], None] = lambda i, s: None) -> StartupBench:
    """``repeats`` runs of ``cfg`` (see the module doc); ``stop_ray`` ends each run's Ray instance."""
    cfg = startup_config(cfg)
    process_start = psutil.Process().create_time()
    out, firsts = [], []
    with tempfile.TemporaryDirectory(prefix="soup-bench-startup-") as work:
        for i in range(repeats):
            try:
                startup, first = one_startup(cfg, Path(work) / f"run-{i}")
            finally:
                stop_ray()
            out.append(startup)
            firsts.append(first)
            on_repeat(i, startup)
    return StartupBench(repeats=out, process_to_first_trial=firsts[0] - process_start)
