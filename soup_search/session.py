"""The long-lived parts of a run: Ray, the shard actors, the scorer actors and the run store.

Started once per command and shared by every evaluation (profile, trials, final report);
checkpoints are loaded into the shard actors once and never again per trial.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

from soup_search.config import RunConfig
from soup_search.errors import ConfigError
from soup_search.scoring.base import ObjectiveSpec
from soup_search.search.space import SearchSpace
from soup_search.search.trial import TrialContext


def objective_spec(cfg: RunConfig) -> ObjectiveSpec:
    from soup_search.config import objective_params

    return ObjectiveSpec(cfg.objective.name, objective_params(cfg.objective.params, cfg.resolve))


#: CPUs each Ray Tune trial reserves (it only dispatches to actors and waits)
TRIAL_CPUS = 0.01


def cpus_needed(cfg: RunConfig) -> float:
    """Logical CPUs the actors and the concurrent trials (one per scorer, plus one waiting) reserve."""
    r = cfg.resources
    return r.shards * r.shard_cpus + r.scorers * r.scorer_cpus + (r.scorers + 1) * TRIAL_CPUS


def check_capacity(need: float, remote: bool) -> None:
    """Refuse a cluster too small for the actors and trials (Ray would wait forever)."""
    import ray

    have = ray.cluster_resources().get("CPU", 0.0)
    if need > have + 1e-9:
        where = "the Ray cluster" if remote else "the local Ray instance (resources.num_cpus)"
        raise ConfigError("resources", [
            f"shards, scorers and trials need {need:g} CPUs but {where} has {have:g}; "
            "lower resources.shard_cpus / scorer_cpus / scorers, or add CPUs"])


class Session:
    def __init__(self, cfg: RunConfig, pool, state_dir: str | Path, score_cache: str | Path | None = None):
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from soup_search.cluster import start_ray
        from soup_search.paths import cache_dir
        from soup_search.profile import candidate_fingerprints
        from soup_search.scoring.actors import ScorerPool
        from soup_search.search.store import RunStore
        from soup_search.shard_pool import ShardedPool

        res = cfg.resources
        self.cfg, self.pool = cfg, pool
        self.spec = objective_spec(cfg)
        self.candidate_fps = candidate_fingerprints(pool)
        need = cpus_needed(cfg)
        start_ray(res.address, res.num_cpus or max(os.cpu_count() or 1, math.ceil(need)))
        check_capacity(need, res.address is not None)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.store = ray.remote(RunStore).options(num_cpus=0, scheduling_strategy=here).remote(
            str(Path(state_dir) / "run.sqlite"), str(score_cache or cache_dir("scores") / "scores.sqlite"))
        placement = "SPREAD" if res.address else "PACK"
        self.shards = ShardedPool(pool, n_shards=min(res.shards, len(pool.tensor_infos)),
                                  num_cpus=res.shard_cpus, placement=placement, use_gpu=res.use_gpu)
        try:
            num_gpus = 1.0 if (res.use_gpu or (res.use_gpu is None and self.shards.use_gpu)) else 0.0
            self.scorers = ScorerPool(pool.paths[0], n=res.scorers, backend=res.backend,
                                      num_cpus=res.scorer_cpus, num_gpus=num_gpus, batch_size=res.batch_size)
        except BaseException:
            self.shards.close()
            raise

    def context(self, space: SearchSpace | None = None, stage: str = "search") -> TrialContext:
        return TrialContext(space=space, spec=self.spec, candidate_fps=dict(self.candidate_fps),
                            shard_actors=tuple(self.shards.actors), free_scorers=self.scorers.free,
                            store=self.store, stage=stage)

    def close(self) -> None:
        import ray

        with contextlib.suppress(Exception):
            self.scorers.close()
        with contextlib.suppress(Exception):
            self.shards.close()
        with contextlib.suppress(Exception):
            ray.kill(self.store)


@contextlib.contextmanager
def open_session(cfg: RunConfig, pool, state_dir: str | Path,
                 score_cache: str | Path | None = None) -> Iterator[Session]:
    session = Session(cfg, pool, state_dir, score_cache)
    try:
        yield session
    finally:
        session.close()
