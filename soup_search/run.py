"""``soup-search run``: profile → analyze → search → held-out report, top to bottom.

The run folder keeps its state under ``state/`` (the Optuna study, the run log, Ray
Tune's files) so that the same command, started again after a crash or a SIGKILL,
continues the same study. Final artefacts are written atomically at the end.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from soup_search.config import RunConfig
from soup_search.errors import ConfigError

STATE = "state"


@dataclass
class Stages:
    """Wall seconds per stage, in order."""

    seconds: dict[str, float] = field(default_factory=dict)
    _t: float = field(default_factory=time.perf_counter)

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._t, 3)
        self._t = now

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(sum(self.seconds.values()), 3)}


def config_fingerprint(cfg: RunConfig) -> str:
    data = cfg.model_dump(mode="json", exclude={"root", "resources"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def prepare_state(cfg: RunConfig, out: Path, resume: bool, fresh: bool) -> Path:
    """The state folder: new, or the one of an earlier run of the same config (to continue)."""
    state = out / STATE
    marker = state / "config.json"
    fp = config_fingerprint(cfg)
    if fresh and state.exists():
        shutil.rmtree(state)
    if marker.is_file():
        stored = json.loads(marker.read_text())
        if stored.get("fingerprint") != fp:
            raise ConfigError(str(out), [
                "this run folder holds a study of a different config; pass --fresh to start over "
                "or --out to use another folder"])
    elif resume:
        raise ConfigError(str(out), [f"nothing to resume: no earlier run in {out}; drop --resume"])
    state.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        marker.write_text(json.dumps({"fingerprint": fp, "config": cfg.model_dump(mode="json")}, indent=2))
    return state


def storage_url(cfg: RunConfig, state: Path) -> str:
    return cfg.search.storage or f"sqlite:///{(state / 'optuna.sqlite').resolve()}"


def baseline_points(space, grid_points=()) -> list[dict]:
    """Uniform soup of the experts first, then each expert alone, then any grid points.

    Points that give the same soup (an expert chosen for two categories) are enqueued once.
    """
    k = len(space.groups)
    candidates = [space.params_for([1.0 / k] * k)]
    if k > 1:
        candidates += [space.params_for([1.0 if j == i else 0.0 for j in range(k)]) for i in range(k)]
    candidates += [space.params_for(list(w)) for w in grid_points]
    points, seen = [], set()
    for p in candidates:
        key = tuple(sorted((module, model, round(w, 9)) for module, per in space.soup(p).items()
                           for model, w in per.items() if w > 0))
        if key not in seen:
            seen.add(key)
            points.append(p)
    return points


def informative_categories(frame, wanted, console) -> list[str]:
    """The categories to analyse: those asked for (or all), minus any on which every model scores
    the same (ρ is undefined there, and no expert can be better than another). They are still scored."""
    from soup_search.errors import AnalysisError

    cats = list(wanted) if wanted else list(frame.columns)
    unknown = [c for c in cats if c not in frame.columns]
    if unknown:
        raise AnalysisError(f"analysis.categories names unknown categories {unknown}; known: {list(frame.columns)}")
    constant = [c for c in cats if frame[c].nunique() <= 1]
    if constant:
        console.print(f"[yellow]note:[/] every candidate scores the same on {constant}; "
                      "left out of the analysis (still part of the objective)")
    kept = [c for c in cats if c not in constant]
    if len(kept) < 2:
        raise AnalysisError(f"only {len(kept)} category separates the candidates ({kept}); "
                            "SoCE needs at least 2: use more dev examples or other candidates")
    return kept


def profile_and_analyze(cfg: RunConfig, session, state: Path, console, progress: bool = True):
    """Stages 1-2: the category table (profiled on dev, or a leaderboard), the analysis, the space."""
    from soup_search.analysis import analyze
    from soup_search.profile import leaderboard_frame, profile_dev, scores_frame, write_scores
    from soup_search.search.space import SearchSpace

    if cfg.scores is not None:
        frame = leaderboard_frame(cfg)
    else:
        results, _ = profile_dev(session, console, progress)
        frame = scores_frame(results)
    write_scores(frame, state / "scores.csv")
    a = cfg.analysis
    categories = informative_categories(frame, a.categories, console)
    analysis = analyze(frame, categories=categories, candidates=list(session.pool.names), method=a.method,
                       tau=a.tau, top_k=a.top_k, grouping=a.grouping)
    space = SearchSpace.from_analysis(analysis.experts, analysis.alternates, cfg.search.min_weight,
                                      cfg.search.per_module)
    return frame, analysis, space


def run_pipeline(cfg: RunConfig, out: Path, console, resume: bool = False, fresh: bool = False,
                 progress: bool = True) -> dict:
    """Run the whole pipeline; returns the results dict also written to results.json."""
    from soup_search.pool import load_config_pool
    from soup_search.report import final_rows, write_outputs
    from soup_search.search.grid import simplex_grid
    from soup_search.search.tuner import run_study
    from soup_search.session import open_session
    from soup_search.ui import trial_progress

    stages = Stages()
    state = prepare_state(cfg, out, resume, fresh)
    pool = load_config_pool(cfg, progress=progress)
    stages.done("candidates")
    with open_session(cfg, pool, state) as session:
        stages.done("actors")
        frame, analysis, space = profile_and_analyze(cfg, session, state, console, progress)
        stages.done("profile_analyze")

        # 3. search
        s, concurrency = cfg.search, cfg.resources.scorers
        study = s.study_name or f"{cfg.name}-{config_fingerprint(cfg)}"
        url = storage_url(cfg, state)
        grid = simplex_grid(len(space.groups)) if (s.sampler == "grid" or s.grid) else []
        main_points = baseline_points(space, grid if s.sampler == "grid" else ())
        n_main = len(main_points) if s.sampler == "grid" else s.n_trials
        ctx = session.context(space, stage="search")
        with trial_progress(console, f"search ({s.sampler})", n_main, progress) as advance:
            run_study(ctx, storage_url=url, study_name=study, n_trials=n_main, sampler=s.sampler, seed=s.seed,
                      points=main_points, concurrency=concurrency, tune_dir=state / "tune", on_trial=advance)
        grid_study = None
        if s.grid and s.sampler != "grid":
            grid_study = f"{study}-grid"
            grid_points = [space.params_for(list(w)) for w in grid]
            with trial_progress(console, "paper grid", len(grid_points), progress) as advance:
                run_study(session.context(space, stage="grid"), storage_url=url, study_name=grid_study,
                          n_trials=len(grid_points), sampler="grid", seed=s.seed, points=grid_points,
                          concurrency=concurrency, tune_dir=state / "tune", on_trial=advance)
        elif s.sampler == "grid":
            grid_study = study
        stages.done("search")

        # 4. held-out report
        rows, best = final_rows(session, space, analysis, url, study, grid_study, console, progress)
        stages.done("final_eval")
        results = write_outputs(out, cfg, session, frame, analysis, space, url, study, grid_study, rows, best,
                                stages, console)
    return results
