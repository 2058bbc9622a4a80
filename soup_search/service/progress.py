"""A search's progress, read from its Optuna storage (the study the run writes)."""

from __future__ import annotations

from pathlib import Path

import optuna
from sqlalchemy.exc import SQLAlchemyError

from soup_search.config import RunConfig
from soup_search.pipeline.state import STATE, storage_url, study_name

DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _read_only(url: str) -> str:
    """An SQLite URL opened read-only (others as they are)."""
    prefix = "sqlite:///"
    return f"{prefix}file:{url[len(prefix):]}?mode=ro&uri=true" if url.startswith(prefix) else url


def read_progress(cfg: RunConfig, out_dir: str | Path) -> dict:
    """``{trials, budget, best_dev, trials_per_min}``; trials are complete or pruned ones
    (both count in ``search.n_trials``). Empty counts before the study exists."""
    state = Path(out_dir) / STATE
    budget = cfg.search.n_trials
    empty = {"trials": 0, "budget": budget, "best_dev": None, "trials_per_min": None}
    if not (state / "optuna.sqlite").is_file():
        return empty
    # read-only: only the run writes its study. A reader that opened the storage for writing would
    # race the run creating its tables in a new file (both insert Optuna's schema version; the run
    # lost that race once and failed)
    try:
        storage = optuna.storages.RDBStorage(_read_only(storage_url(cfg, state)), skip_compatibility_check=True,
                                             skip_table_creation=True)
    except (SQLAlchemyError, optuna.exceptions.StorageInternalError):  # its tables are not there yet
        return empty
    try:
        study = optuna.load_study(study_name=study_name(cfg), storage=storage)
        trials = study.get_trials(deepcopy=False, states=DONE)
    except (KeyError, SQLAlchemyError, optuna.exceptions.StorageInternalError):  # no study yet
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
