"""The long-lived parts of a run: Ray, the shard group, the scorer actors and the run store.

Started once per command and shared by every evaluation (category scores, trials, final
held-out evaluation); checkpoints are loaded into the shard actors once and never again.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from soup_search.candidates import CandidateSet
from soup_search.config import RunConfig, objective_params
from soup_search.engine.cluster import check_capacity, cpus_needed, start_ray
from soup_search.engine.run_store import RunStore
from soup_search.engine.scorer_actors import ScorerActors
from soup_search.engine.shard_group import ShardGroup
from soup_search.io.paths import cache_dir
from soup_search.scoring.protocol import ObjectiveSpec


def objective_spec(cfg: RunConfig) -> ObjectiveSpec:
    o = cfg.objective
    return ObjectiveSpec.of(o.name, objective_params(o.params, cfg.resolve), o.held_out_categories)


class Session:
    def __init__(self, cfg: RunConfig, candidates: CandidateSet, state_dir: str | Path,
                 score_cache: str | Path | None = None):
        res = cfg.resources
        self.cfg, self.candidates = cfg, candidates
        self.spec = objective_spec(cfg)
        self.candidate_fps = candidates.fingerprints()
        need = cpus_needed(cfg)
        start_ray(res.address, res.num_cpus or max(os.cpu_count() or 1, math.ceil(need)), trial_slots=res.scorers + 1)
        check_capacity(need, res.address is not None)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.store = ray.remote(RunStore).options(num_cpus=0, scheduling_strategy=here).remote(
            str(Path(state_dir) / "run.sqlite"), str(score_cache or cache_dir("scores") / "scores.sqlite"))
        placement = "SPREAD" if res.address else "PACK"
        use_gpu = bool(ray.cluster_resources().get("GPU", 0)) if res.use_gpu is None else res.use_gpu
        # scorers first: their workers import transformers and build a model while the shard
        # workers load the checkpoints (the two start in parallel, not one after the other)
        self.scorers = ScorerActors(candidates.paths[0], n=res.scorers, backend=res.backend,
                                    num_cpus=res.scorer_cpus, num_gpus=1.0 if use_gpu else 0.0,
                                    batch_size=res.batch_size)
        self.shards = None
        try:
            self.shards = ShardGroup(candidates, n_shards=min(res.shards, len(candidates.tensor_infos)),
                                     num_cpus=res.shard_cpus, placement=placement, use_gpu=use_gpu)
            self.scorers.wait_ready()
        except BaseException:
            self.scorers.close()
            if self.shards is not None:
                self.shards.close()
            raise

    def evaluations(self, stage: str | None = None) -> list[dict]:
        """The run log's evaluations (of one stage), oldest first."""
        return ray.get(self.store.evaluations.remote(stage))

    def record(self, *row) -> None:
        """Add one row to the run log (the arguments of :meth:`RunStore.record`)."""
        ray.get(self.store.record.remote(*row))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.scorers.close()
        with contextlib.suppress(Exception):
            self.shards.close()
        with contextlib.suppress(Exception):
            ray.kill(self.store)


@contextlib.contextmanager
def open_session(cfg: RunConfig, candidates: CandidateSet, state_dir: str | Path,
                 score_cache: str | Path | None = None) -> Iterator[Session]:
    session = Session(cfg, candidates, state_dir, score_cache)
    try:
        yield session
    finally:
        session.close()
