"""``soup-search run``: the SoCE recipe, top to bottom.

config → candidates → category scores → analysis → search space (the analysis's experts, or the
models the config names: interpolate, task_vector) → (a child search: the parent's
trials carried over, seeds) → trials → held-out evaluation → outputs. The run folder keeps its state under ``state/`` (the Optuna study,
the trial log, Ray Tune's files) so that the same command, started again after a crash or
a SIGKILL, continues the same study. The state is marked with the config only when the
first trial starts, so a run that fails before that never blocks the corrected one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from transformers import AutoTokenizer

from soup_search.analysis.informative import informative_categories
from soup_search.analysis.soce import Analysis, analyze
from soup_search.candidates import CandidateSet
from soup_search.config import INTERPOLATE, TASK_VECTOR, RunConfig
from soup_search.engine.session import Session, objective_spec, open_session
from soup_search.errors import ConfigError
from soup_search.merge import MergeRecipe
from soup_search.objectives import Objective
from soup_search.pipeline.candidate_set import load_config_candidates
from soup_search.pipeline.category_scores import leaderboard_frame, score_candidates, write_scores
from soup_search.pipeline.curve_inputs import SAME_BASE_MAX, base_distance
from soup_search.pipeline.final_eval import (
    RunResult, best_trial, comparison_specs, evaluate_comparison, trial_records,
)
from soup_search.pipeline.lineage import LineagePlan, log_carried, plan_lineage, summarize
from soup_search.pipeline.outputs import write_outputs
from soup_search.pipeline.progress import SILENT, Progress
from soup_search.pipeline.state import (
    mark_state, prepare_state, storage_url, study_name,
)
from soup_search.search.baselines import Space, distinct_points, grid_points, starting_points
from soup_search.search.interpolation_space import InterpolationSpace
from soup_search.search.space import SearchSpace
from soup_search.search.task_vector_space import TaskVectorSpace
from soup_search.scoring.prompts import prompt_ids
from soup_search.search.trial import TrialContext
from soup_search.search.tuner import run_study



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


def profile_and_analyze(cfg: RunConfig, session: Session, state: Path, progress: Progress = SILENT
                        ) -> tuple[pd.DataFrame, Analysis, Space, dict[str, list[str]]]:
    """The category table (profiled on dev, or a leaderboard), the SoCE analysis, the search space,
    and which candidates were scored now and which the score cache answered (none: a leaderboard)."""
    profiled: dict[str, list[str]] = {"scored": [], "cached": []}
    if cfg.scores is not None:
        frame = leaderboard_frame(cfg)
    else:
        scores = score_candidates(session, progress=progress)
        frame = scores.frame()
        for name, hit in scores.cached.items():
            profiled["cached" if hit else "scored"].append(name)
    frame = frame.drop(columns=[c for c in cfg.objective.held_out_categories if c in frame.columns])
    write_scores(frame, state / "scores.csv")
    a = cfg.analysis
    cats = informative_categories(frame, a.categories)
    if cats.constant:
        progress.note(f"[yellow]note:[/] every candidate scores the same on {cats.constant}; "
                      "left out of the analysis (still part of the objective)")
    s = cfg.search
    # a task-vector method's base model is no expert (its task vector is zero)
    experts_from = [n for n in session.candidates.names if n != s.base_model]
    analysis = analyze(frame, categories=cats.kept, candidates=experts_from, method=a.method,
                       tau=a.tau, top_k=a.top_k, grouping=a.grouping)
    return frame, analysis, search_space(cfg, analysis), profiled


def search_space(cfg: RunConfig, analysis: Analysis) -> Space:
    """What the search samples: the models the config names (interpolate: the pair; task_vector: the
    target and the vectors), or the SoCE space of the analysis's experts and their weights."""
    s = cfg.search
    if s.method == INTERPOLATE:
        return InterpolationSpace(*s.pair, per_module=s.per_module)
    if s.method == TASK_VECTOR:
        return TaskVectorSpace.of(s.target, [(v.plus, v.minus) for v in s.vectors], s.alpha_range)
    return SearchSpace.from_analysis(analysis.experts, analysis.alternates, s.min_weight, s.per_module,
                                     weights=s.weights, method=s.method, base_model=s.base_model,
                                     method_params=dict(s.method_params), lambda_range=s.lambda_range)


def check_given_models(cfg: RunConfig, candidates: CandidateSet, progress: Progress = SILENT) -> None:
    """The models a search of given models names, judged by their weights before any Ray work (the
    curve commands' rule, :func:`base_distance`): each task vector's plus and minus must be fine-tunes
    of one base (every problem in one error); an interpolation pair of different bases is noted."""
    s = cfg.search
    if s.method == TASK_VECTOR:
        problems = []
        for i, v in enumerate(s.vectors):
            distance = base_distance(candidates.candidate(v.plus).path, candidates.candidate(v.minus).path,
                                     candidates.cache_dir)
            if distance > SAME_BASE_MAX:
                problems.append(f"'search.vectors[{i}]': plus {v.plus!r} and minus {v.minus!r} look like fine-tunes "
                                f"of different bases (base distance {distance:.2f} > {SAME_BASE_MAX}; about 1 for "
                                "unrelated weights): their difference is not a task vector; give two fine-tunes "
                                "of one base")
        if problems:
            raise ConfigError("search", problems)
    elif s.method == INTERPOLATE:
        a, b = (candidates.candidate(n).path for n in s.pair)
        distance = base_distance(a, b, candidates.cache_dir)
        if distance > SAME_BASE_MAX:
            progress.note(f"[yellow]note:[/] search.pair {s.pair[0]} and {s.pair[1]} have base distance "
                          f"{distance:.2f} (above {SAME_BASE_MAX}: fine-tunes of different bases, whose "
                          "interpolation is rarely meaningful)")


def check_prompting(cfg: RunConfig, candidates: CandidateSet) -> Objective:
    """The objective, its first prompt built on the candidates' tokenizer before any Ray work: a
    ``chat_template: true`` without a template, or too few train rows for ``fewshot``, fails here in
    one line instead of inside a scorer actor."""
    objective = objective_spec(cfg).build()
    tokenizer = AutoTokenizer.from_pretrained(candidates.template_dir)
    for example in objective.examples("dev")[:1]:
        prompt_ids(tokenizer, objective, example)
    return objective


def search(cfg: RunConfig, session: Session, space: Space, state: Path, progress: Progress = SILENT,
           lineage: LineagePlan | None = None) -> None:
    """The study (model-based sampler, or the paper grid), then the grid too when ``search.grid``.

    A child search (``lineage``) first logs the parent's carried trials, then evaluates its seeds,
    then the baselines that no carried trial holds; ``search.n_trials`` counts fresh trials only."""
    s, concurrency, url, study = cfg.search, cfg.resources.scorers, storage_url(cfg, state), study_name(cfg)
    tune_dir = cfg.resources.storage_path or state / "tune"
    grid = grid_points(space) if (s.sampler == "grid" or s.grid) else []
    main_points = starting_points(space, grid if s.sampler == "grid" else ())
    if lineage is not None:
        main_points = distinct_points(space, [*lineage.seeds, *main_points], [t.params for t in lineage.carry.trials])
    n_main = len(main_points) if s.sampler == "grid" else s.n_trials
    mark_state(cfg, state)
    if lineage is not None:
        log_carried(session, lineage)
    prune = s.prune and s.sampler != "grid"  # the paper's grid scores every point in full
    carried = f", {len(lineage.carry.trials)} carried over" if lineage is not None else ""
    with progress.task(f"search ({s.sampler}{carried})", n_main) as advance:
        run_study(TrialContext.of(session, space, "search", chunks=s.chunks if prune else 1), storage_url=url,
                  study_name=study, n_trials=n_main, sampler=s.sampler, seed=s.seed, points=main_points,
                  concurrency=concurrency, tune_dir=tune_dir, on_trial=advance, prune=prune,
                  capacity=session.capacity_problem)
    if s.grid and s.sampler != "grid":
        with progress.task("paper grid" if isinstance(space, SearchSpace) else "grid", len(grid)) as advance:
            run_study(TrialContext.of(session, space, "grid"), storage_url=url, study_name=f"{study}-grid",
                      n_trials=len(grid), sampler="grid", seed=s.seed, points=grid,
                      concurrency=concurrency, tune_dir=tune_dir, on_trial=advance, capacity=session.capacity_problem)


def run_pipeline(cfg: RunConfig, out: Path, progress: Progress = SILENT, resume: bool = False,
                 fresh: bool = False) -> RunResult:
    """Run the whole recipe; returns the result also written to ``out``."""
    stages = Stages()
    state = prepare_state(cfg, out, resume, fresh)
    candidates = load_config_candidates(cfg, progress=progress is not SILENT)
    check_given_models(cfg, candidates, progress)
    notes = check_prompting(cfg, candidates).notes  # (the scorers build their own objective)
    stages.done("candidates")
    with open_session(cfg, candidates, state) as session:
        stages.done("actors")
        frame, analysis, space, profiled = profile_and_analyze(cfg, session, state, progress)
        stages.done("profile_analyze")
        plan = plan_lineage(cfg, session, space) if cfg.lineage is not None else None
        search(cfg, session, space, state, progress, plan)
        stages.done("search")

        evaluations = session.evaluations()
        lineage = summarize(plan, evaluations, space) if plan is not None else None
        if lineage is not None:
            progress.note(f"[cyan]lineage:[/] {lineage.line()}" + "".join(f"; {n}" for n in lineage.notes))
        trials = trial_records(evaluations)
        searched = [t for t in trials if t.stage == "search"]
        grid = [t for t in trials if t.stage == "grid"]
        best = best_trial(searched)
        grid_best = best_trial(grid) if grid else (best if cfg.search.sampler == "grid" else None)
        specs = comparison_specs(candidates.names, space, analysis, best, grid_best)
        comparison = evaluate_comparison(session, specs, progress)
        stages.done("final_eval")

        out.mkdir(parents=True, exist_ok=True)
        best_recipe = MergeRecipe.model_validate(comparison[0].recipe)
        session.shards.merge_to_checkpoint(best_recipe, out / "best", tokenizer_src=candidates.template_dir)
        stages.done("export")
    result = RunResult(config=cfg, analysis=analysis, scores=frame, trials=trials, best=best,
                       comparison=comparison, candidate_paths={c.name: c.path for c in candidates.members},
                       timings=stages.total(), objective_revision=session.spec.fingerprint(),
                       category_weights=session.spec.category_weights,
                       candidate_fps=dict(session.candidate_fps), profiled=profiled, lineage=lineage,
                       objective_notes=notes)
    write_outputs(result, out)
    return result

