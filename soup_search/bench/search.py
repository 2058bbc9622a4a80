"""``soup-search bench search``: how fast the search finds the grid's best, and its per-trial overhead.

On a config's candidates (the demo's by default) it profiles and analyses once, evaluates the
paper's exhaustive grid, then runs TPE studies (several seeds) and counts how many
evaluations each needs to reach the grid's best dev score. The per-trial overhead is
trial wall time minus scoring time, over the trials that were really scored.

Scores go to a private cache in the bench folder, so earlier runs never make it look fast.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from soup_search.engine.session import open_session
from soup_search.pipeline.candidate_set import load_config_candidates
from soup_search.pipeline.progress import SILENT, Progress
from soup_search.pipeline.run import profile_and_analyze
from soup_search.search.baselines import baseline_points
from soup_search.search.grid import simplex_grid
from soup_search.search.trial import TrialContext
from soup_search.search.tuner import completed_trials, open_storage, run_study


@dataclass
class SearchBench:
    groups: list[str]
    grid_points: int
    grid_best: float
    tpe_evals_to_grid_best: list[int | None]
    tpe_budget: int
    seeds: list[int]
    trials_scored: int
    trial_s_mean: float
    scoring_s_mean: float
    overhead_s_mean: float
    overhead_fraction: float
    merge_s_mean: float
    tune_wall_per_trial_s: float
    concurrency: int
    notes: list[str] = field(default_factory=list)

    @property
    def median_evals(self) -> float | None:
        got = [n for n in self.tpe_evals_to_grid_best if n is not None]
        return statistics.median(got) if len(got) == len(self.tpe_evals_to_grid_best) else None


def first_reach(values: list[float], target: float, tol: float = 1e-9) -> int | None:
    """1-based index of the first value reaching ``target`` (None if never)."""
    for i, v in enumerate(values, 1):
        if v >= target - tol:
            return i
    return None


def run_search_bench(cfg, progress: Progress = SILENT, seeds=(0, 1, 2), budget: int | None = None,
                     keep: Path | None = None) -> SearchBench:

    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="soup-bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(work / 'optuna.sqlite').resolve()}"
    candidates = load_config_candidates(cfg, progress=progress is not SILENT)
    conc = cfg.resources.scorers
    with open_session(cfg, candidates, work, score_cache=work / "scores.sqlite") as session:
        _, analysis, space = profile_and_analyze(cfg, session, work, progress)
        grid = [space.params_for(list(w)) for w in simplex_grid(len(space.groups))]
        with progress.task("paper grid", len(grid)) as advance:
            run_study(TrialContext.of(session, space, "grid"), storage_url=url, study_name="grid",
                      n_trials=len(grid), sampler="grid", seed=0, points=grid, concurrency=conc,
                      tune_dir=work / "tune", on_trial=advance)
        storage = open_storage(url)
        grid_best = max(t.value for t in completed_trials(storage, "grid"))
        budget = budget or len(grid)
        reached, tune_walls = [], []
        for seed in seeds:
            name = f"tpe-{seed}"
            t0 = time.perf_counter()
            with progress.task(f"tpe seed {seed}", budget) as advance:
                run_study(TrialContext.of(session, space, name), storage_url=url, study_name=name, n_trials=budget,
                          sampler="tpe", seed=seed, points=baseline_points(space), concurrency=conc,
                          tune_dir=work / "tune", on_trial=advance)
            tune_walls.append((time.perf_counter() - t0) / budget)
            values = [t.value for t in sorted(completed_trials(storage, name), key=lambda t: t.number)]
            reached.append(first_reach(values, grid_best))
        rows = [r for r in session.evaluations() if r["stage"] != "profile" and not r["cached"]]
    trial_s = [r["timings"]["trial_s"] for r in rows]
    scoring_s = [r["timings"]["scoring_s"] for r in rows]
    merge_s = [r["timings"].get("merge_s", 0.0) for r in rows]
    overhead = [t - s for t, s in zip(trial_s, scoring_s)]
    mean = statistics.fmean
    return SearchBench(
        groups=list(space.groups), grid_points=len(grid), grid_best=grid_best,
        tpe_evals_to_grid_best=reached, tpe_budget=budget, seeds=list(seeds), trials_scored=len(rows),
        trial_s_mean=mean(trial_s), scoring_s_mean=mean(scoring_s), overhead_s_mean=mean(overhead),
        overhead_fraction=sum(overhead) / sum(trial_s), merge_s_mean=mean(merge_s),
        tune_wall_per_trial_s=mean(tune_walls), concurrency=conc,
    )


def to_json(bench: SearchBench) -> dict:
    return {**asdict(bench), "median_evals": bench.median_evals}
