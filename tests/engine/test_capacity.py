"""What a run reserves on a cluster (CPUs, a GPU plan), and waits that end in one line, not a hang,
once the cluster can no longer hold it."""

from __future__ import annotations

import threading

import pytest

from soup_search.config import ResourcesConfig
from soup_search.engine.cluster import Needs, capacity_problem, plan_needs, wait_or_refuse
from soup_search.errors import ClusterError


@pytest.mark.parametrize("gpus, scorers, shards, planned", [
    (4, 2, 2, (4.0, 1.0, 1.0)),  # a GPU per scorer, the two left one per shard
    (3, 2, 2, (3.0, 0.5, 1.0)),  # one left, shared by the two shards
    (2, 2, 2, (2.0, 0.0, 1.0)),  # none left: the shards merge on CPU
    (16, 4, 4, (8.0, 1.0, 1.0)),  # at most one GPU per shard
])
def test_gpus_go_to_the_scorers_first(gpus, scorers, shards, planned):
    needs = plan_needs(ResourcesConfig(scorers=scorers, shards=shards), gpus)
    assert (needs.gpus, needs.shard_gpus, needs.scorer_gpus) == planned
    assert needs.cpus == pytest.approx(shards * 0.25 + scorers * 0.5 + scorers * 0.01)


def test_no_gpus_are_planned_without_them_or_when_turned_off():
    assert plan_needs(ResourcesConfig(), 0).gpus == 0
    assert plan_needs(ResourcesConfig(use_gpu=False), 8).as_resources().keys() == {"CPU"}


def test_capacity_problem_names_what_is_missing(ray_session):
    assert capacity_problem(Needs(cpus=1.5)) is None
    assert capacity_problem(Needs(cpus=100)) == "shards, scorers and trials need 100 CPUs but the cluster has 2"
    problem = capacity_problem(Needs(cpus=1, gpus=2, shard_gpus=0.5, scorer_gpus=1))
    assert problem == "shards, scorers and trials need 2 GPUs but the cluster has 0"


def test_a_wait_on_an_actor_with_nowhere_to_run_ends_in_one_line(ray_session):
    """A call that never finishes (standing in for an actor whose node is gone) is given up as soon
    as the cluster cannot hold the run: a ClusterError that says how to go on, not a hang."""
    forever = ray_session.remote(num_cpus=0)(lambda: threading.Event().wait()).remote()
    try:
        with pytest.raises(ClusterError, match="need 100 CPUs but the cluster has 2; add nodes .* --resume"):
            wait_or_refuse(forever, Needs(cpus=100), every_s=0.2)
    finally:
        ray_session.cancel(forever, force=True)
    done = ray_session.remote(num_cpus=0)(lambda: 42)
    assert wait_or_refuse([done.remote()], Needs(cpus=1)) == [42]
