"""Connecting to Ray and sizing what runs on it.

No address means a private local instance (``address="local"``): a Ray cluster already
running on the machine, or ``RAY_ADDRESS`` in the environment, is never joined by accident.
An address that nobody answers is refused within seconds, naming the address.
"""

from __future__ import annotations

import logging
import os

import ray

from soup_search.config import TRIAL_CPUS, RunConfig, address_problem
from soup_search.errors import ConfigError

__all__ = ["TRIAL_CPUS", "TRIAL_SLOT", "check_capacity", "check_reachable", "cpus_needed", "start_ray"]

#: a custom resource of the local instance: one unit per trial that may hold a Tune actor at
#: once. Trials ask for 0.01 CPU, so without it every trial Tune stages gets its placement group
#: at once and starts a worker process, only for Tune to kill it when a finished trial's actor
#: is reused (a new process importing torch per trial, and Ray's "N PYTHON worker processes"
#: warnings). With the slots a staged trial waits for a running one to hand its actor over.
TRIAL_SLOT = "soup_search_trial"


def cpus_needed(cfg: RunConfig) -> float:
    """Logical CPUs the actors and the concurrent trials (one per scorer, plus one waiting) reserve."""
    return cfg.resources.cpus_needed()


def check_reachable(address: str) -> None:
    """Refuse an address (``host:port`` or ``ray://host:port``) where nothing listens."""
    problem = address_problem(address)
    if problem:
        raise ConfigError("resources", [problem])


def start_ray(address: str | None = None, num_cpus: int | None = None, quiet: bool = True,
              trial_slots: int | None = None):
    """``ray.init`` once: join ``address`` or start a private local instance with ``num_cpus``
    (and ``trial_slots`` units of :data:`TRIAL_SLOT`; a joined cluster has none).

    A local start that times out (a loaded machine) is tried once more, then refused in one line.
    """
    if ray.is_initialized():
        return ray
    env = {"TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    if os.environ.get("SOUP_SEARCH_CACHE_DIR"):
        env["SOUP_SEARCH_CACHE_DIR"] = os.environ["SOUP_SEARCH_CACHE_DIR"]
    kwargs = dict(include_dashboard=False, log_to_driver=not quiet, runtime_env={"env_vars": env},
                  logging_level=logging.ERROR if quiet else logging.INFO)
    if address:
        check_reachable(address)
        ray.init(address=address, **kwargs)
        return ray
    for attempt in (1, 2):
        try:
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count(),
                     resources={TRIAL_SLOT: trial_slots} if trial_slots else None, **kwargs)
            return ray
        except Exception as exc:  # Ray raises plain Exception for a node that timed out starting
            if "timed out" not in str(exc).lower():
                raise
            ray.shutdown()
            if attempt == 2:
                raise ConfigError("resources", [
                    "the local Ray instance did not start in time twice (the machine is loaded); "
                    "retry when it is quieter, or start one with ray start --head and set resources.address"]) from None
    return ray


def check_capacity(need: float, remote: bool) -> None:
    """Refuse a cluster too small for the actors and trials (Ray would wait forever)."""
    have = ray.cluster_resources().get("CPU", 0.0)
    if need > have + 1e-9:
        where = "the Ray cluster" if remote else "the local Ray instance (resources.num_cpus)"
        raise ConfigError("resources", [
            f"shards, scorers and trials need {need:g} CPUs but {where} has {have:g}; "
            "lower resources.shard_cpus / scorer_cpus / scorers, or add CPUs"])
