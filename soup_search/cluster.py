"""Connecting to Ray: a local cluster by default, or an existing one by address."""

from __future__ import annotations

import logging
import os

import torch


def start_ray(address: str | None = None, num_cpus: int | None = None, quiet: bool = True):
    """``ray.init`` once: join ``address`` ("auto" or ray://...) or start a local cluster."""
    import ray

    if ray.is_initialized():
        return ray
    env = {"TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}
    if os.environ.get("SOUP_SEARCH_CACHE_DIR"):
        env["SOUP_SEARCH_CACHE_DIR"] = os.environ["SOUP_SEARCH_CACHE_DIR"]
    kwargs = dict(include_dashboard=False, log_to_driver=not quiet, runtime_env={"env_vars": env},
                  logging_level=logging.ERROR if quiet else logging.INFO)
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), **kwargs)
    return ray


def gpus_available() -> bool:
    """Whether the Ray cluster (or, before Ray starts, this machine) has a GPU."""
    import ray

    if ray.is_initialized():
        return ray.cluster_resources().get("GPU", 0) > 0
    return torch.cuda.is_available()
