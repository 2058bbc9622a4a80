"""Connecting to Ray and sizing what runs on it.

No address means a private local instance (``address="local"``): a Ray cluster already
running on the machine, or ``RAY_ADDRESS`` in the environment, is never joined by accident.
An address that nobody answers is refused within seconds, naming the address.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import ray

from soup_search.config import TRIAL_CPUS, ResourcesConfig, RunConfig, address_problem
from soup_search.errors import ClusterError, ConfigError

__all__ = ["HEAD_RESOURCE", "TRIAL_CPUS", "TRIAL_SLOT", "Needs", "capacity_problem", "check_capacity", "check_reachable",
           "check_storage", "cpus_needed", "driver_on_head", "live_nodes", "lost_nodes_error", "plan_needs",
           "start_ray", "wait_or_refuse"]

#: a custom resource of the local instance: one unit per trial that may hold a Tune actor at
#: once. Trials ask for 0.01 CPU, so without it every trial Tune stages gets its placement group
#: at once and starts a worker process, only for Tune to kill it when a finished trial's actor
#: is reused (a new process importing torch per trial, and Ray's "N PYTHON worker processes"
#: warnings). With the slots a staged trial waits for a running one to hand its actor over.
TRIAL_SLOT = "soup_search_trial"


def cpus_needed(cfg: RunConfig) -> float:
    """Logical CPUs the actors and the concurrent trials (one per scorer) reserve."""
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
    env = {"TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore",
           **{k: v for k, v in os.environ.items() if k.startswith("SOUP_SEARCH_")}}
    kwargs = dict(include_dashboard=False, log_to_driver=not quiet,
                  logging_level=logging.ERROR if quiet else logging.INFO)
    if address:
        # the workers of a joined cluster do not inherit this process's environment: soup-search's
        # own variables (cache dir, test hooks) travel with the job
        check_reachable(address)
        ray.init(address=address, runtime_env={"env_vars": env}, **kwargs)
        return ray
    # a private instance's workers inherit this environment; a job runtime env would make Ray
    # start a worker per actor instead of handing out the workers it prestarts
    os.environ.update(env)
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


#: a resource only the head node has (Ray's own): trials, the run store and the scorers' free
#: list live there, beside the driver, so that losing a worker node never loses one of them
HEAD_RESOURCE = "node:__internal_head__"


@dataclass(frozen=True)
class Needs:
    """What a run's actors and trials reserve on the cluster, and how GPUs are shared out."""

    cpus: float
    gpus: float = 0.0
    shard_gpus: float = 0.0  # per shard actor
    scorer_gpus: float = 0.0  # per scorer actor

    def as_resources(self) -> dict[str, float]:
        return {"CPU": self.cpus} | ({"GPU": self.gpus} if self.gpus else {})


def plan_needs(res: ResourcesConfig, cluster_gpus: float) -> Needs:
    """The run's reservation: CPUs as configured; with GPUs (``use_gpu``, or any on the cluster
    when it is unset; always for vLLM scorers) every scorer gets whole GPUs of its own (one, or
    ``vllm.tensor_parallel_size``) and the shards share what the scorers leave, at most one each
    (none left: the shards merge on CPU). Shards never take a share of a scorer's GPU: vLLM
    reserves most of its memory for the KV cache, and a plan that cannot fit is refused by
    :func:`check_capacity` instead of waiting for GPUs that never come free."""
    use_gpu = bool(cluster_gpus) if res.use_gpu is None else res.use_gpu
    if res.backend == "vllm":
        use_gpu = True
    if not use_gpu:
        return Needs(cpus=res.cpus_needed())
    per_scorer = float(res.vllm.tensor_parallel_size) if res.backend == "vllm" else 1.0
    spare = max(0.0, cluster_gpus - res.scorers * per_scorer)
    shard_gpus = min(1.0, spare / res.shards) if spare else 0.0
    return Needs(cpus=res.cpus_needed(), gpus=res.scorers * per_scorer + shard_gpus * res.shards,
                 shard_gpus=shard_gpus, scorer_gpus=per_scorer)


def _short(needs: Needs) -> dict[str, tuple[float, float]]:
    """The resources the cluster's live nodes lack for ``needs``: name -> (needed, available)."""
    have = ray.cluster_resources()
    return {name: (need, have.get(name, 0.0)) for name, need in needs.as_resources().items()
            if need > have.get(name, 0.0) + 1e-9}


def capacity_problem(needs: Needs, short: dict[str, tuple[float, float]] | None = None) -> str | None:
    """What the cluster's live nodes lack for ``needs`` (one line), or None when it fits."""
    short = _short(needs) if short is None else short
    if not short:
        return None
    return "shards, scorers and trials need " + " and ".join(
        f"{need:g} {name}s but the cluster has {have:g}" for name, (need, have) in short.items())


def check_capacity(needs: Needs, remote: bool) -> None:
    """Refuse a cluster too small for the actors and trials (Ray would wait forever)."""
    short = _short(needs)
    if not short:
        return
    fixes = []
    if "CPU" in short:
        fixes.append("lower resources.shards / scorers / shard_cpus / scorer_cpus, or "
                     + ("add nodes" if remote else "raise resources.num_cpus"))
    if "GPU" in short:
        fixes.append(f"each scorer takes {needs.scorer_gpus:g} whole GPU(s): lower resources.scorers "
                     "(or vllm.tensor_parallel_size), use backend: hf with use_gpu: false, or add GPUs")
    raise ConfigError("resources", [f"{capacity_problem(needs, short)}; {'; '.join(fixes)}"])


def lost_nodes_error(problem: str) -> ClusterError:
    """The one line a run stops with when the nodes left cannot hold its actors."""
    return ClusterError(f"the Ray cluster lost nodes mid-run: {problem}; add nodes with those resources, "
                        "then run the same command with --resume")


def wait_or_refuse(refs, needs: Needs | None, every_s: float = 2.0):
    """``ray.get(refs)``, checking every ``every_s`` seconds of waiting that the cluster can still
    hold ``needs``: a call to an actor that has nowhere to restart would otherwise wait forever."""
    pending = list(refs) if isinstance(refs, list) else [refs]
    while True:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=every_s)
        if not pending:
            return ray.get(refs)
        problem = capacity_problem(needs) if needs is not None else None
        if problem:
            raise lost_nodes_error(problem)


def live_nodes() -> list[dict]:
    return [n for n in ray.nodes() if n.get("Alive")]


def driver_on_head() -> bool:
    """Whether this process is attached to the head node (a `ray job` or a driver started there)."""
    here = ray.get_runtime_context().get_node_id()
    return any(n["NodeID"] == here and HEAD_RESOURCE in n.get("Resources", {}) for n in live_nodes())


def check_storage(storage_path: str | None) -> None:
    """Refuse a multi-node cluster without shared storage for Tune's experiment dir."""
    nodes = live_nodes()
    if storage_path is None and len(nodes) > 1:
        raise ConfigError("resources", [
            f"the Ray cluster has {len(nodes)} nodes, and Ray Tune needs storage they all see; set "
            "resources.storage_path to a shared filesystem path or an fsspec URL (s3://bucket/tune)"])
