"""Where a run's actors land on a real 3-node cluster with (declared) GPUs: shards one per node,
merging bit for bit as one process does; GPUs shared out as planned; shared Tune storage required."""

from __future__ import annotations

import subprocess

import pytest

from tests.cluster.conftest import MultiNode, cluster_config, probe, search_cmd
from tests.helpers import make_candidates

pytestmark = pytest.mark.slow

SHARDS_PROBE = """
import json, sys, torch
from soup_search.candidates import load_candidates
from soup_search.engine.cluster import live_nodes, start_ray
from soup_search.engine.session import shard_placement
from soup_search.engine.shard import Shard
from soup_search.engine.shard_group import ShardGroup
from soup_search.merge import MergeRecipe

start_ray(ADDRESS)
cands = load_candidates(PATHS)
recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.3, "m2": 0.2})
with ShardGroup(cands, n_shards=3, placement=shard_placement(True, 3), use_gpu=False) as group:
    merged = group.merged_state_dict(recipe)
    nodes = group.node_ids()
alone = Shard([(c.name, c.path) for c in cands.members], list(cands.tensor_infos)).merge(recipe)
print(json.dumps({"nodes": nodes, "live": [n["NodeID"] for n in live_nodes()],
                  "tensors": len(merged),
                  "equal": all(torch.equal(merged[n], torch.from_numpy(alone[n])) for n in merged)}))
"""

GPU_PROBE = """
import json, ray
from soup_search.config import load_config
from soup_search.engine.session import Session
from soup_search.pipeline.candidate_set import load_config_candidates

cfg = load_config(CONFIG)
session = Session(cfg, load_config_candidates(cfg, progress=False), STATE)
try:
    print(json.dumps({
        "needs": [session.needs.gpus, session.needs.shard_gpus, session.needs.scorer_gpus],
        "shards": [[ray.get(a.node_id.remote()), ray.get(a.gpu_ids.remote())] for a in session.shards.actors],
        "scorers": [[ray.get(a.node_id.remote()), ray.get(a.gpu_ids.remote())] for a in session.scorers.actors],
        "gpu_nodes": [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU")],
    }))
finally:
    session.close()
"""


@pytest.fixture(scope="module")
def gpu_cluster(tiny_zoo):
    """A CPU-only head (1 CPU) and two worker nodes with 1 CPU and 2 (declared) GPUs each."""
    cluster = MultiNode(head={"num_cpus": 1}, worker={"num_cpus": 1, "num_gpus": 2})
    cluster.ensure_workers(2)
    yield cluster
    cluster.shutdown()


def test_shards_sit_on_distinct_nodes_and_merge_bit_for_bit(gpu_cluster, tmp_path):
    paths = [str(p) for p in make_candidates(tmp_path / "models", n=3)]
    code = SHARDS_PROBE.replace("ADDRESS", repr(gpu_cluster.address)).replace("PATHS", repr(paths))
    seen = probe(gpu_cluster.address, code)
    print(f"FIGURE shard nodes: {[n[:8] for n in seen['nodes']]} of live nodes {[n[:8] for n in seen['live']]}")
    assert len(seen["live"]) == 3
    assert sorted(seen["nodes"]) == sorted(seen["live"])  # one shard on each of the three nodes
    assert seen["tensors"] > 3 and seen["equal"]


def test_gpus_go_to_scorers_first_then_shards_as_planned(gpu_cluster, tmp_path):
    """4 GPUs, 2 scorers, 2 shards: a whole GPU for each scorer, the 2 left one per shard."""
    cfg = cluster_config(tmp_path, "gpus", gpu_cluster.address, seed=303, use_gpu=True)
    code = GPU_PROBE.replace("CONFIG", repr(str(cfg))).replace("STATE", repr(str(tmp_path / "state")))
    seen = probe(gpu_cluster.address, code)
    print(f"FIGURE GPU placement: shards {[(n[:8], g) for n, g in seen['shards']]}, "
          f"scorers {[(n[:8], g) for n, g in seen['scorers']]}")
    assert seen["needs"] == [4.0, 1.0, 1.0]
    actors = seen["shards"] + seen["scorers"]
    assert all(len(gpus) == 1 for _, gpus in actors)  # each actor was given one GPU of its own ...
    assert all(node in seen["gpu_nodes"] for node, _ in actors)  # ... on a node that has GPUs
    assert len({(node, gpus[0]) for node, gpus in actors}) == 4  # no GPU given twice
    assert len({node for node, _ in seen["shards"]}) == 2  # the shards on distinct nodes


def test_a_multi_node_run_without_shared_storage_is_refused(gpu_cluster, tmp_path):
    cfg = cluster_config(tmp_path, "no-storage", gpu_cluster.address, seed=304)
    text = cfg.read_text().replace(f"  storage_path: {tmp_path / 'shared' / 'tune'}\n", "")
    assert "storage_path" not in text
    cfg.write_text(text)
    done = subprocess.run(search_cmd(cfg, tmp_path / "out"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "has 3 nodes" in done.stderr and "set resources.storage_path" in done.stderr
    assert not (tmp_path / "out" / "results.json").exists()
