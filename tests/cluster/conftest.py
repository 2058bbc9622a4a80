"""A real multi-node Ray cluster on this machine: a head and worker nodes, each its own raylet
with its own resources (``ray.cluster_utils.Cluster``, as Ray's own tests use). The test process
only owns the nodes; searches join the cluster by address in their own process, like a user's
driver, and the tests inspect it from short-lived subprocesses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

#: a lost node is declared dead after about 2 s (Ray's default is about 30 s)
FAST_FAILURE_DETECTION = {"health_check_failure_threshold": 2, "health_check_period_ms": 1000,
                          "health_check_initial_delay_ms": 0}


class MultiNode:
    """A head node and worker nodes that tests add and kill."""

    def __init__(self, head: dict, worker: dict):
        from ray.cluster_utils import Cluster

        self.worker_args = worker
        self.cluster = Cluster(initialize_head=True, head_node_args={
            "include_dashboard": False, "_system_config": FAST_FAILURE_DETECTION, **head})
        self.workers = []

    @property
    def address(self) -> str:
        return self.cluster.address

    def ensure_workers(self, n: int) -> None:
        while len(self.workers) < n:
            self.workers.append(self.cluster.add_node(**self.worker_args))
        self.cluster.wait_for_nodes()

    def kill(self, node_id: str) -> None:
        """Kill one worker node (its raylet and workers, SIGKILL) by its Ray node id."""
        node = next(w for w in self.workers if w.node_id == node_id)
        self.cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)

    def kill_workers(self) -> None:
        for node in list(self.workers):
            self.kill(node.node_id)

    def shutdown(self) -> None:
        self.cluster.shutdown()


@pytest.fixture(scope="module")
def multi_node(tiny_zoo):
    """A head with 1 CPU and two 1-CPU worker nodes (the tiny search needs 1.52 CPUs)."""
    cluster = MultiNode(head={"num_cpus": 1}, worker={"num_cpus": 1})
    cluster.ensure_workers(2)
    yield cluster
    cluster.shutdown()


def cluster_config(tmp_path: Path, name: str, address: str, seed: int, n_trials: int = 6,
                   storage: str | None = None, **resources) -> Path:
    """A tiny-zoo search that joins the cluster at ``address`` (Tune's dir on storage all nodes see)."""
    cfg = {
        "name": name,
        "candidates": {"zoo": "tiny"},
        "objective": {"name": "toy", "params": {"seed": seed, "n_dev": 24, "n_test": 24}},
        "analysis": {"tau": 0.5, "top_k": 2},
        "search": {"sampler": "tpe", "n_trials": n_trials, "seed": 0, "storage": storage},
        "resources": {"address": address, "storage_path": str(tmp_path / "shared" / "tune"), "shards": 2,
                      "scorers": 2, "shard_cpus": 0.25, "scorer_cpus": 0.5, **resources},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def search_cmd(cfg: Path, out: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "soup_search", "run", str(cfg), "--out", str(out), *flags]


def rows(db: Path, query: str) -> list[tuple]:
    """Rows of a database another process may still be creating (none until it exists)."""
    if not db.exists():
        return []
    try:
        return sqlite3.connect(db).execute(query).fetchall()
    except sqlite3.Error:
        return []


def logged_recipes(state: Path) -> list[str]:
    return [r[0] for r in rows(state / "run.sqlite", "SELECT recipe FROM evaluations WHERE stage = 'search'")]


def finished_trials(state: Path) -> int:
    return rows(state / "optuna.sqlite", "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')")[0][0]


def placement(state: Path) -> dict:
    return json.loads((state / "placement.json").read_text())


def probe(address: str, code: str) -> dict:
    """Run ``code`` in a fresh process joined to the cluster; it prints one JSON object last."""
    env = {**os.environ, "RAY_ADDRESS": address}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
