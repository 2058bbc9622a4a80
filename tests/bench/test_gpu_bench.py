"""``soup-search bench gpu``: the ``--cpu`` smoke run of the same code path, end to end on real Ray
actors and the vLLM stand-in (``tests/fake_vllm``), and its one-line refusals."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from soup_search.bench.gpu import PHASES, GpuBenchOptions, fit_problem, llama_config, tensor_specs
from soup_search.cli import main
from soup_search.io.checkpoint import CheckpointReader
from soup_search.zoo.tokenizer import build_char_tokenizer
from tests.helpers import FAKE_VLLM

GiB = 2**30


@pytest.mark.slow
def test_cpu_smoke_run_times_every_phase_of_every_soup(tmp_path):
    """A real subprocess: Ray local, two shard actors, one vLLM scorer actor importing the stand-in
    through PYTHONPATH; the JSON holds every soup's three phases and the counts asked for."""
    out, keep = tmp_path / "bench.json", tmp_path / "keep"
    env = {**os.environ, "RAY_ADDRESS": "", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(FAKE_VLLM), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "soup_search", "bench", "gpu", "--size", "tiny", "--cpu",
                           "--soups", "2", "--examples", "16", "--keep", str(keep), "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "examples/s" in done.stdout and "push" in done.stdout
    data = json.loads(out.read_text())
    assert (data["size"], data["candidates"], data["soups"], data["examples"]) == ("tiny", 3, 2, 16)
    assert (data["device"], data["gpu"], data["gpu_bytes"]) == ("cpu", "none (--cpu)", 0)
    assert data["vllm_version"] == "0.33.0"  # the stand-in's
    assert data["plan"] == {"shards": 2, "shard_gpu": 0.0, "scorer_gpu": 0.0, "gpu_memory_utilization": 0.5,
                            "shard_memory": "resident", "shard_device": "cpu"}
    assert set(data["setup_s"]) == {"write", "shards", "scorer", "warmup"}
    assert set(data["phases"]) == set(PHASES) == {"merge", "push", "score"}
    for phase in data["phases"].values():
        assert len(phase["runs"]) == 2 and all(s > 0 for s in phase["runs"])
        assert phase["min"] <= phase["median"] <= phase["max"]
        assert phase["median"] == pytest.approx(sum(phase["runs"]) / 2)
    score, rate = data["phases"]["score"], data["examples_per_s"]
    assert rate["runs"] == pytest.approx([16 / s for s in score["runs"]])
    # the real parameter count and bytes of the checkpoints written, bfloat16, one seed each
    readers = [CheckpointReader(keep / f"c{i}") for i in range(3)]
    infos = readers[0].infos()
    assert data["tensors"] == len(infos) == 21
    assert data["params"] == sum(math.prod(i.shape) for i in infos.values())
    assert data["model_bytes"] == sum(i.nbytes for i in infos.values()) == 2 * data["params"]
    assert readers[0].config["vocab_size"] == len(build_char_tokenizer())
    assert (keep / "c0" / "tokenizer.json").is_file()
    first = [r.get("model.layers.0.mlp.up_proj.weight") for r in readers]
    assert first[0].dtype == torch.bfloat16 and not torch.equal(first[0], first[1])
    for r in readers:
        r.close()


def _refusal(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_without_cuda_it_refuses_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = _refusal(capsys, ["bench", "gpu", "--size", "tiny"])
    assert "bench gpu needs a CUDA GPU" in err and "pass --cpu for a smoke run" in err


def test_missing_vllm_is_the_adapters_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)  # (the adapter sets it)
    err = _refusal(capsys, ["bench", "gpu", "--size", "tiny", "--cpu"])
    assert "pip install 'soup-search[vllm]'" in err


def test_bad_options_are_reported_together(capsys):
    err = _refusal(capsys, ["bench", "gpu", "--size", "3B", "--candidates", "1", "--soups", "0", "--examples", "0",
                            "--dtype", "int8", "--shards", "4", "--shard-gpu", "0.3",
                            "--gpu-memory-utilization", "1.5", "--shard-memory", "swap"])
    assert "8 problems" in err
    for text in ("--size 3B", "--candidates 1", "--soups 0", "--examples 0", "--dtype int8",
                 "--shards 4 × --shard-gpu 0.3 leaves the scorer no GPU", "--gpu-memory-utilization 1.5",
                 "--shard-memory swap"):
        assert text in err


def test_sizes_are_the_llama_bodies_with_the_char_vocabulary():
    vocab = len(build_char_tokenizer())
    for size, (hidden, inter, layers, kv) in {"1B": (2048, 8192, 16, 512), "8B": (4096, 14336, 32, 1024)}.items():
        specs = tensor_specs(llama_config(size, "bfloat16"), "bfloat16")
        per_layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * inter + 2 * hidden
        assert sum(math.prod(s.shape) for s in specs) == layers * per_layer + 2 * vocab * hidden + hidden
        assert len(specs) == 9 * layers + 3 and {s.dtype for s in specs} == {"BF16"}


def test_the_shards_must_fit_beside_vllm():
    """8B bfloat16 (13 GiB): three resident copies and the soup do not fit in the half of an 80 GiB
    GPU that vLLM leaves; memory-mapped shards (the soup alone) do, and so does a 141 GiB GPU."""
    model = 13 * GiB
    problem = fit_problem(GpuBenchOptions(size="8B"), model, 80 * GiB)
    assert problem.startswith("the shard actors need about 53.0 GiB") and "leaves 40.0 GiB" in problem
    assert "--shard-memory mmap" in problem
    assert fit_problem(GpuBenchOptions(size="8B", shard_memory="mmap"), model, 80 * GiB) is None
    assert fit_problem(GpuBenchOptions(size="8B"), model, 141 * GiB) is None
    assert fit_problem(GpuBenchOptions(size="8B", gpu_memory_utilization=0.3), model, 80 * GiB) is None
