"""One (declared) GPU, two shards, vLLM scorers: the plan fits or is refused at start, never a hang.

A one-node cluster declares 1 GPU. Shards once took ``min(1, gpus / shards)`` GPU each, so with
no more GPUs than shards they took every GPU and a ``num_gpus=1`` scorer never scheduled: the run
waited forever. The planned placement gives the scorer the whole GPU and merges on CPU. The
scorer actors import the vLLM stand-in (``tests/fake_vllm``, on the nodes' PYTHONPATH), whose
engine runs inside the actor's process as the adapter asks for tensor parallel 1.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.cluster.conftest import MultiNode, cluster_config, search_cmd
from tests.helpers import FAKE_VLLM

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def one_gpu_node(tiny_zoo, tmp_path_factory):
    """A single node with 2 CPUs and 1 declared GPU; its workers can import the vLLM stand-in,
    which logs every engine it builds to ``cluster.engines``."""
    log = tmp_path_factory.mktemp("fake-vllm") / "engines.jsonl"
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(FAKE_VLLM), os.environ.get("PYTHONPATH")])),
           "FAKE_VLLM_LOG": str(log)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the node's raylet and its workers inherit this environment
    try:
        cluster = MultiNode(head={"num_cpus": 2, "num_gpus": 1}, worker={})
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
    cluster.engines = log
    yield cluster
    cluster.shutdown()


def test_two_shards_and_a_vllm_scorer_share_one_gpu_as_planned(one_gpu_node, tmp_path):
    cfg = cluster_config(tmp_path, "one-gpu", one_gpu_node.address, seed=311, n_trials=3,
                         scorers=1, backend="vllm")
    done = subprocess.run(search_cmd(cfg, tmp_path / "out"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["config"]["search"]["n_trials"] == 3 and len(results["trials"]) == 3
    assert len(results["profiled"]["scored"]) == 6  # every candidate scored by the vLLM scorer
    placement = json.loads((tmp_path / "out" / "state" / "placement.json").read_text())
    assert len(placement["shards"]) == 2 and len(placement["scorers"]) == 1
    engines = [json.loads(line) for line in one_gpu_node.engines.read_text().splitlines()]
    assert engines == [{"pid": engines[0]["pid"], "in_process": True, "load_format": "dummy",
                        "cuda_visible_devices": "0"}]  # one vLLM engine, in the scorer's process, on the GPU
    print(f"FIGURE one GPU, 2 shards + 1 vLLM scorer (stand-in): run finished, "
          f"best dev {results['best']['dev_mean']:.3f}")


def test_a_plan_that_cannot_fit_is_refused_in_one_line(one_gpu_node, tmp_path):
    cfg = cluster_config(tmp_path, "two-scorers", one_gpu_node.address, seed=312, scorers=2, backend="vllm")
    done = subprocess.run(search_cmd(cfg, tmp_path / "out"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "need 2 GPUs but the cluster has 1" in done.stderr
    assert "each scorer takes 1 whole GPU(s): lower resources.scorers" in done.stderr
    assert not (tmp_path / "out" / "results.json").exists()
