"""Optuna samplers by name: gp (the config default), tpe, cmaes, random, grid.

``grid`` is the paper's exhaustive grid: its points are enqueued one by one and the
sampler itself is only a fallback (random) that is never reached within the budget.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import optuna

from soup_search.errors import ConfigError

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _tpe(seed: int, n_startup: int):
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                      n_startup_trials=n_startup, constant_liar=True)


def _cmaes(seed: int, n_startup: int):
    return optuna.samplers.CmaEsSampler(
        seed=seed, n_startup_trials=n_startup, warn_independent_sampling=False,
        independent_sampler=optuna.samplers.TPESampler(seed=seed),
    )


def _gp(seed: int, n_startup: int):
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup)


def _random(seed: int, n_startup: int):
    return optuna.samplers.RandomSampler(seed=seed)


SAMPLERS: dict[str, Callable[[int, int], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "cmaes": _cmaes,
    "gp": _gp,
    "random": _random,
    "grid": _random,
}


def make_sampler(name: str, seed: int = 0, n_startup: int = 5) -> optuna.samplers.BaseSampler:
    if name not in SAMPLERS:
        raise ConfigError("search", [f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}"])
    return SAMPLERS[name](seed, n_startup)
