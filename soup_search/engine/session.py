"""The long-lived parts of a run: Ray, the shard group, the scorer actors and the run store.

Started once per command and shared by every evaluation (category scores, trials, final
held-out evaluation); checkpoints are loaded into the shard actors once and never again.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from soup_search.candidates import CandidateSet
from soup_search.config import RunConfig, objective_params
from soup_search.engine.cluster import (
    capacity_problem, check_capacity, check_storage, live_nodes, plan_needs, start_ray,
)
from soup_search.engine.run_store import RunStore
from soup_search.engine.scorer_actors import ScorerActors
from soup_search.engine.shard_group import ShardGroup
from soup_search.io.atomic import atomic_file
from soup_search.io.paths import cache_dir
from soup_search.scoring.protocol import ObjectiveSpec


def objective_spec(cfg: RunConfig) -> ObjectiveSpec:
    """The config's objective, with the fingerprint of its data today (so the score cache and a
    child search's carried trials never mix scores of edited data with today's)."""
    o = cfg.objective
    return ObjectiveSpec.of(o.name, objective_params(o.params, cfg.resolve), o.held_out_categories).with_data()


class Session:
    def __init__(self, cfg: RunConfig, candidates: CandidateSet, state_dir: str | Path,
                 score_cache: str | Path | None = None):
        res = cfg.resources
        self.cfg, self.candidates = cfg, candidates
        self.spec = objective_spec(cfg)
        self.candidate_fps = candidates.fingerprints()
        start_ray(res.address, res.num_cpus or max(os.cpu_count() or 1, math.ceil(res.cpus_needed())),
                  trial_slots=res.scorers)
        remote = res.address is not None
        self.needs = plan_needs(res, ray.cluster_resources().get("GPU", 0.0))
        check_capacity(self.needs, remote)
        if remote:
            check_storage(res.storage_path)
        # the run store and the scorers' free list live beside the driver: a lost worker node
        # takes neither with it (the driver's node going down ends the run anyway)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.store = ray.remote(RunStore).options(num_cpus=0, scheduling_strategy=here).remote(
            str(Path(state_dir) / "run.sqlite"), str(score_cache or cache_dir("scores") / "scores.sqlite"))
        # scorers first: their workers import transformers and build a model while the shard
        # workers load the checkpoints (the two start in parallel, not one after the other)
        self.scorers = ScorerActors(candidates.paths[0], n=res.scorers, backend=res.backend,
                                    num_cpus=res.scorer_cpus, num_gpus=self.needs.scorer_gpus,
                                    batch_size=res.batch_size, free_list_at=here, cache_dir=candidates.cache_dir,
                                    vllm=res.vllm.model_dump() if res.backend == "vllm" else None)
        self.shards = None
        try:
            self.shards = ShardGroup(candidates, n_shards=min(res.shards, len(candidates.tensor_infos)),
                                     num_cpus=res.shard_cpus, placement=shard_placement(remote, res.shards),
                                     use_gpu=self.needs.shard_gpus > 0, num_gpus=self.needs.shard_gpus,
                                     memory=res.shard_memory)
            self.scorers.wait_ready()
        except BaseException:
            self.scorers.close()
            if self.shards is not None:
                self.shards.close()
            raise
        self.state_dir = Path(state_dir)
        self.write_placement()

    def write_placement(self, timeout_s: float | None = None) -> dict:
        """Record the Ray node of the driver, each shard and each scorer in ``state/placement.json``
        (at the start, and again at the end: an actor whose node was lost has moved)."""
        shards = [a.node_id.remote() for a in self.shards.actors]
        scorers = [a.node_id.remote() for a in self.scorers.actors]
        nodes = ray.get(shards + scorers, timeout=timeout_s)
        placement = {"driver": ray.get_runtime_context().get_node_id(),
                     "shards": nodes[:len(shards)], "scorers": nodes[len(shards):]}
        with atomic_file(self.state_dir / "placement.json") as fh:
            json.dump(placement, fh, indent=1)
        return placement

    def capacity_problem(self) -> str | None:
        """Why the cluster can no longer hold this session's actors (one line), or None."""
        return capacity_problem(self.needs) or self.shards.placement_problem()

    def evaluations(self, stage: str | None = None) -> list[dict]:
        """The run log's evaluations (of one stage), oldest first."""
        return ray.get(self.store.evaluations.remote(stage))

    def record(self, *row) -> None:
        """Add one row to the run log (the arguments of :meth:`RunStore.record`)."""
        ray.get(self.store.record.remote(*row))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # not when an actor has nowhere to restart
            self.write_placement(timeout_s=10)
        with contextlib.suppress(Exception):
            self.scorers.close()
        with contextlib.suppress(Exception):
            self.shards.close()
        with contextlib.suppress(Exception):
            ray.kill(self.store)


def shard_placement(remote: bool, shards: int) -> str:
    """One node for a local instance; on a cluster one shard per node (STRICT_SPREAD) when it has
    enough nodes, so that their memory adds up, else as spread as Ray can."""
    if not remote:
        return "PACK"
    return "STRICT_SPREAD" if len(live_nodes()) >= shards else "SPREAD"


@contextlib.contextmanager
def open_session(cfg: RunConfig, candidates: CandidateSet, state_dir: str | Path,
                 score_cache: str | Path | None = None) -> Iterator[Session]:
    session = Session(cfg, candidates, state_dir, score_cache)
    try:
        yield session
    finally:
        session.close()
