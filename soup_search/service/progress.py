"""A search's progress, read from its Optuna storage (the study the run writes)."""

from __future__ import annotations

from pathlib import Path

import optuna

from soup_search.config import RunConfig
from soup_search.pipeline.state import STATE, storage_url, study_name

DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def read_progress(cfg: RunConfig, out_dir: str | Path) -> dict:
    """``{trials, budget, best_dev, trials_per_min}``; trials are complete or pruned ones
    (both count in ``search.n_trials``). Empty counts before the study exists."""
    state = Path(out_dir) / STATE
    budget = cfg.search.n_trials
    empty = {"trials": 0, "budget": budget, "best_dev": None, "trials_per_min": None}
    if not (state / "optuna.sqlite").is_file():
        return empty
    storage = optuna.storages.RDBStorage(storage_url(cfg, state))
    try:
        study = optuna.load_study(study_name=study_name(cfg), storage=storage)
        trials = study.get_trials(deepcopy=False, states=DONE)
    except KeyError:  # the run has not created its study yet
        return empty
    finally:
        storage.engine.dispose()
    if not trials:
        return empty
    complete = [t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    minutes = (max(ends) - min(starts)).total_seconds() / 60 if starts and ends else 0.0
    return {"trials": len(trials), "budget": budget, "best_dev": max(complete) if complete else None,
            "trials_per_min": round(len(trials) / minutes, 2) if minutes > 0 else None}
