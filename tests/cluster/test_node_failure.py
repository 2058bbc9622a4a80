"""A search on a 3-node Ray cluster loses worker nodes: it finishes on the nodes left, or, when
they can no longer hold its actors, stops in one line and resumes once nodes are back."""

from __future__ import annotations

import json
import subprocess

import pytest
import sqlalchemy as sa

from tests.cluster.conftest import (
    cluster_config, finished_trials, logged_recipes, placement, search_cmd,
)
from tests.helpers import start_until_blocked

pytestmark = pytest.mark.slow


def test_a_search_survives_losing_a_worker_node(multi_node, postgres, tmp_path):
    """Kill the worker node that holds a shard actor after the first trial: the shard is rebuilt
    on another node, its calls retried, and the search ends with exactly its budget, no recipe
    scored twice. The study lives on PostgreSQL, as on a real cluster."""
    multi_node.ensure_workers(2)
    postgres.create_database("lose_one")
    cfg = cluster_config(tmp_path, "lose-one", multi_node.address, seed=301, n_trials=6,
                         storage=postgres.url("lose_one"))
    out, state = tmp_path / "lose-one", tmp_path / "lose-one" / "state"
    # returns once the first trial is logged (the search says so on a socket, and goes on)
    proc = start_until_blocked(search_cmd(cfg, out), tmp_path / "logged.sock", after=1, block=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    start = placement(state)
    workers = {w.node_id for w in multi_node.workers}
    victim = next(node for node in start["shards"] if node in workers)  # SPREAD: 2 shards on 3 nodes
    multi_node.kill(victim)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]

    assert len(set(start["shards"])) == 2  # spread: the two shards on two nodes
    end = placement(state)
    assert victim not in end["shards"] + end["scorers"]  # the lost node's actors were rebuilt elsewhere
    with sa.create_engine(postgres.url("lose_one")).connect() as db:
        states = dict(db.execute(sa.text("SELECT state, COUNT(*) FROM trials GROUP BY state")).all())
    assert states.get("COMPLETE", 0) + states.get("PRUNED", 0) == 6
    assert not (state / "optuna.sqlite").exists()
    recipes = logged_recipes(state)
    print(f"FIGURE node loss: shards {[n[:8] for n in start['shards']]} -> {[n[:8] for n in end['shards']]}, "
          f"killed {victim[:8]}, trials {states}, logged {len(recipes)} ({len(set(recipes))} distinct)")
    assert len(recipes) == 6 and len(set(recipes)) == 6  # the budget exactly, no recipe scored twice
    results = json.loads((out / "results.json").read_text())
    assert len(results["trials"]) == 6


def test_a_cluster_too_small_stops_in_one_line_and_resumes(multi_node, tmp_path):
    """Both workers die mid-search; the head alone cannot hold the actors (1 CPU for 1.52): the
    run stops with one line naming what is missing, and --resume finishes it once a node is back."""
    multi_node.ensure_workers(2)
    cfg = cluster_config(tmp_path, "lose-all", multi_node.address, seed=302, n_trials=6)
    out, state = tmp_path / "lose-all", tmp_path / "lose-all" / "state"
    # every trial after the 2nd blocks until the run ends: the loss always lands mid-search
    proc = start_until_blocked(search_cmd(cfg, out), tmp_path / "blocked.sock", stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    multi_node.kill_workers()
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 2, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert "need 1.52 CPUs but the cluster has 1" in lines[0] and "--resume" in lines[0]
    print(f"FIGURE capacity stop: {lines[0]} (after {len(logged_recipes(state))} trials)")
    assert 2 <= len(logged_recipes(state)) < 6

    multi_node.ensure_workers(1)
    again = subprocess.run(search_cmd(cfg, out, "--resume"), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert finished_trials(state) == 6
    recipes = logged_recipes(state)
    assert len(recipes) == 6 and len(set(recipes)) == 6
