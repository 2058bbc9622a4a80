"""``soup-search bench search``: how fast the search finds the grid's best, and its per-trial overhead.

On a config's pool (the demo's by default) it profiles and analyses once, evaluates the
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


def run_search_bench(cfg, console, seeds=(0, 1, 2), budget: int | None = None, keep: Path | None = None,
                     progress: bool = True) -> SearchBench:
    from soup_search.pool import load_config_pool
    from soup_search.run import baseline_points, profile_and_analyze
    from soup_search.search.grid import simplex_grid
    from soup_search.search.tuner import completed_trials, open_storage, run_study
    from soup_search.session import open_session
    from soup_search.ui import trial_progress

    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="soup-bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(work / 'optuna.sqlite').resolve()}"
    pool = load_config_pool(cfg, progress=progress)
    conc = cfg.resources.scorers
    with open_session(cfg, pool, work, score_cache=work / "scores.sqlite") as session:
        _, analysis, space = profile_and_analyze(cfg, session, work, console, progress)
        grid = [space.params_for(list(w)) for w in simplex_grid(len(space.groups))]
        with trial_progress(console, "paper grid", len(grid), progress) as advance:
            run_study(session.context(space, stage="grid"), storage_url=url, study_name="grid",
                      n_trials=len(grid), sampler="grid", seed=0, points=grid, concurrency=conc,
                      tune_dir=work / "tune", on_trial=advance)
        storage = open_storage(url)
        grid_best = max(t.value for t in completed_trials(storage, "grid"))
        budget = budget or len(grid)
        reached, tune_walls = [], []
        for seed in seeds:
            name = f"tpe-{seed}"
            t0 = time.perf_counter()
            with trial_progress(console, f"tpe seed {seed}", budget, progress) as advance:
                run_study(session.context(space, stage=name), storage_url=url, study_name=name, n_trials=budget,
                          sampler="tpe", seed=seed, points=baseline_points(space), concurrency=conc,
                          tune_dir=work / "tune", on_trial=advance)
            tune_walls.append((time.perf_counter() - t0) / budget)
            values = [t.value for t in sorted(completed_trials(storage, name), key=lambda t: t.number)]
            reached.append(first_reach(values, grid_best))
        import ray

        rows = [r for r in ray.get(session.store.evaluations.remote()) if r["stage"] != "profile" and not r["cached"]]
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
