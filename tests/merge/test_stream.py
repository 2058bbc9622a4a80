"""Disk-to-disk merges: real checkpoints in, a loadable Hugging Face checkpoint out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from soup_search.io.checkpoint import CheckpointReader
from soup_search.merge import MergeRecipe
from soup_search.merge.stream import merge_to_disk, resolve_model_paths


def merged_state(out) -> dict[str, torch.Tensor]:
    reader = CheckpointReader(out)
    return {name: reader.get(name) for name in reader.tensor_names}


def test_linear_merge_to_disk_matches_reference_and_loads(candidates_dir, state_dicts, tmp_path):
    from transformers import AutoModelForCausalLM

    recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.3, "m2": 0.2})
    out = merge_to_disk(recipe, tmp_path / "soup", resolve_model_paths(recipe, candidates_dir), progress=False)
    got = merged_state(out)
    assert set(got) == set(state_dicts["m0"])
    for name, tensor in got.items():
        want = sum(w * state_dicts[k][name].double() for k, w in (("m0", 0.5), ("m1", 0.3), ("m2", 0.2)))
        assert tensor.dtype == torch.float32
        assert torch.allclose(tensor.double(), want, atol=1e-6), name
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= files
    card = (out / "README.md").read_text()
    assert "linear" in card and "weight: 0.3" in card and recipe.fingerprint() in card
    model = AutoModelForCausalLM.from_pretrained(out)
    sd = model.state_dict()
    assert torch.allclose(sd["model.layers.1.mlp.down_proj.weight"], got["model.layers.1.mlp.down_proj.weight"])
    assert not any(p.name.startswith(".soup") for p in tmp_path.iterdir())


def test_sharded_inputs_and_sharded_output(sharded_pool, tmp_path):
    assert (sharded_pool / "m0" / "model.safetensors.index.json").is_file()
    recipe = MergeRecipe.soup({"m0": 0.25, "m1": 0.75})
    out = merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, sharded_pool),
                        max_file_bytes=30_000, progress=False)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    files = set(index["weight_map"].values())
    assert len(files) > 1 and all((out / s).is_file() for s in files)
    a, b = CheckpointReader(sharded_pool / "m0"), CheckpointReader(sharded_pool / "m1")
    got = merged_state(out)
    assert set(got) == set(a.tensor_names)
    for name, tensor in got.items():
        assert torch.allclose(tensor, 0.25 * a.get(name) + 0.75 * b.get(name), atol=1e-6), name


def test_bf16_inputs_give_bf16_output_and_config(bf16_pool, tmp_path):
    from transformers import AutoModelForCausalLM

    recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.5})
    out = merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, bf16_pool), progress=False)
    got = merged_state(out)
    a, b = (load_file(bf16_pool / k / "model.safetensors") for k in ("m0", "m1"))
    for name, tensor in got.items():
        assert tensor.dtype == torch.bfloat16
        assert torch.equal(tensor, ((a[name].float() + b[name].float()) / 2).to(torch.bfloat16)), name
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.bfloat16


def test_dtype_float16_output_from_float32_ties(candidates_dir, state_dicts, tmp_path):
    recipe = MergeRecipe.from_yaml(f"""
models:
  - {{model: m1, parameters: {{weight: 0.6, density: 0.5}}}}
  - {{model: m2, parameters: {{weight: 0.4, density: 0.5}}}}
merge_method: ties
base_model: {candidates_dir / "m0"}
dtype: float16
tokenizer_source: base
""")
    paths = resolve_model_paths(recipe, candidates_dir)
    assert paths[str(candidates_dir / "m0")] == candidates_dir / "m0"
    out = merge_to_disk(recipe, tmp_path / "out", paths, progress=False)
    got = merged_state(out)
    assert all(t.dtype == torch.float16 for t in got.values())
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"
    assert (out / "tokenizer.json").read_bytes() == (candidates_dir / "m0" / "tokenizer.json").read_bytes()
    # the base's norm weights are ones in every model: zero task vectors leave the base
    assert torch.equal(got["model.norm.weight"].float(), state_dicts["m0"]["model.norm.weight"])


def test_gradient_recipe_uses_config_layer_count(deep_pool, tmp_path):
    recipe = MergeRecipe.from_yaml("""
models:
  - {model: d0, parameters: {weight: [0.0, 1.0]}}
  - {model: d1, parameters: {weight: 1.0}}
merge_method: linear
parameters: {normalize: false}
""")
    out = merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, deep_pool), progress=False)
    got = merged_state(out)
    d0, d1 = CheckpointReader(deep_pool / "d0"), CheckpointReader(deep_pool / "d1")
    name = "model.layers.1.mlp.up_proj.weight"  # t = 0.5 of 3 layers
    assert torch.allclose(got[name], 0.5 * d0.get(name) + d1.get(name), atol=1e-6)


def test_missing_path_for_a_model(candidates_dir, tmp_path):
    from soup_search.errors import MergeError

    recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.5})
    with pytest.raises(MergeError, match="no path"):
        merge_to_disk(recipe, tmp_path / "out", {"m0": candidates_dir / "m0"}, progress=False)
    assert not (tmp_path / "out").exists()


def test_refuses_to_overwrite_an_input(candidates_dir, tmp_path):
    from soup_search.errors import MergeError

    shutil.copytree(candidates_dir / "m0", tmp_path / "m0")
    recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.5})
    paths = {"m0": tmp_path / "m0", "m1": candidates_dir / "m1"}
    before = (tmp_path / "m0" / "model.safetensors").read_bytes()
    with pytest.raises(MergeError, match="is the input model 'm0'"):
        merge_to_disk(recipe, tmp_path / "m0", paths, progress=False)
    assert (tmp_path / "m0" / "model.safetensors").read_bytes() == before


# -- the streaming path: NaN/Inf checks, bit identity, the writer, atomicity, memory ----------
def poisoned_pool(candidates_dir, root, key="m2", name="model.norm.weight", value=float("nan"), at=3):
    """A copy of ``candidates_dir``'s m0..m2 where model ``key``'s tensor ``name`` holds one ``value`` (flat index ``at``)."""
    from safetensors.torch import save_file

    for k in ("m0", "m1", "m2"):
        shutil.copytree(candidates_dir / k, root / k)
    file = root / key / "model.safetensors"
    state = load_file(file)
    state[name] = state[name].clone()
    state[name].view(-1)[at] = value
    save_file(state, str(file), metadata={"format": "pt"})
    return root


def leftovers(root) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(("value", "chunk"), [(float("nan"), None), (float("inf"), None), (float("nan"), 1000)])
def test_nonfinite_input_is_named_and_nothing_is_written(candidates_dir, tmp_path, monkeypatch, value, chunk):
    from soup_search.errors import MergeError
    from soup_search.merge import stream

    if chunk:  # the NaN sits in the last of several chunks
        monkeypatch.setattr(stream, "CHUNK", chunk)
    name = "model.embed_tokens.weight"
    root = poisoned_pool(candidates_dir, tmp_path / "candidates", name=name, value=value, at=-5)
    recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.3, "m2": 0.2})
    out = tmp_path / "out"
    with pytest.raises(MergeError, match=rf"model 'm2': tensor '{name}' holds NaN or Inf"):
        merge_to_disk(recipe, out, resolve_model_paths(recipe, root), progress=False)
    assert not out.exists() and leftovers(tmp_path) == []


def test_nonfinite_input_of_task_arithmetic_and_of_its_base(candidates_dir, tmp_path):
    from soup_search.errors import MergeError

    root = poisoned_pool(candidates_dir, tmp_path / "candidates", key="m0", name="model.layers.0.mlp.up_proj.weight")
    recipe = MergeRecipe.model_validate({
        "models": [{"model": "m1", "parameters": {"weight": 0.7}}, {"model": "m2", "parameters": {"weight": -0.4}}],
        "merge_method": "task_arithmetic", "base_model": "m0"})
    with pytest.raises(MergeError, match=r"model 'm0': tensor 'model.layers.0.mlp.up_proj.weight'"):
        merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, root), allow_negative=True, progress=False)
    assert not (tmp_path / "out").exists()


def test_nonfinite_input_of_ties_is_caught_even_when_pruned(candidates_dir, tmp_path):
    from soup_search.errors import MergeError

    root = poisoned_pool(candidates_dir, tmp_path / "candidates", key="m1", value=float("-inf"))
    recipe = MergeRecipe.model_validate({
        "models": [{"model": "m1", "parameters": {"weight": 0.5, "density": 0.01}},
                   {"model": "m2", "parameters": {"weight": 0.5, "density": 0.01}}],
        "merge_method": "ties", "base_model": "m0"})
    with pytest.raises(MergeError, match=r"model 'm1': tensor 'model.norm.weight'"):
        merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, root), progress=False)


def test_nonfinite_input_with_zero_weight_is_ignored(candidates_dir, state_dicts, tmp_path):
    root = poisoned_pool(candidates_dir, tmp_path / "candidates")
    recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.5, "m2": 0.0})
    got = merged_state(merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, root), progress=False))
    for name, tensor in got.items():
        assert torch.isfinite(tensor).all(), name
        assert torch.equal(tensor, torch.mul(state_dicts["m0"][name], 0.5).add_(state_dicts["m1"][name], alpha=0.5))


def test_allow_nonfinite_writes_the_nan(candidates_dir, tmp_path):
    root = poisoned_pool(candidates_dir, tmp_path / "candidates")
    recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.3, "m2": 0.2})
    got = merged_state(merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, root),
                                     allow_nonfinite=True, progress=False))
    assert torch.isnan(got["model.norm.weight"]).sum() == 1
    assert torch.isfinite(got["model.embed_tokens.weight"]).all()


BIT_IDENTICAL = {
    "linear": {"models": [{"model": f"m{i}", "parameters": {"weight": w}} for i, w in enumerate((0.4, 0.1, 0.3, 0.2))],
               "merge_method": "linear"},
    "linear_zero_unnormalized": {
        "models": [{"model": "m0", "parameters": {"weight": 1.3}}, {"model": "m1", "parameters": {"weight": 0.0}},
                   {"model": "m2", "parameters": {"weight": -0.25}}],
        "merge_method": "linear", "parameters": {"normalize": False}},
    "task_arithmetic": {
        "models": [{"model": "m1", "parameters": {"weight": 0.6}}, {"model": "m2", "parameters": {"weight": -0.35}},
                   {"model": "m3", "parameters": {"weight": 0.45}}],
        "merge_method": "task_arithmetic", "base_model": "m0", "parameters": {"lambda": 0.9}},
    "ties": {
        "models": [{"model": "m1", "parameters": {"weight": 0.6, "density": 0.4}},
                   {"model": "m2", "parameters": {"weight": 0.3, "density": 0.7}}],
        "merge_method": "ties", "base_model": "m0"},
    "interpolate": {"models": [{"model": "m3"}, {"model": "m1"}], "merge_method": "interpolate",
                    "parameters": {"lambda": {"attention": 0.3, "mlp": 0.8, "default": 0.55}}},
    "linear_to_bfloat16": {"models": [{"model": "m0", "parameters": {"weight": 0.3}},
                                      {"model": "m2", "parameters": {"weight": 0.7}}],
                           "merge_method": "linear", "dtype": "bfloat16"},
}


@pytest.mark.parametrize("chunk", [None, 999])  # 999 elements: most tensors span several chunks
@pytest.mark.parametrize("case", sorted(BIT_IDENTICAL))
def test_streamed_output_is_bit_identical_to_merge_tensor(candidates_dir, state_dicts, tmp_path, monkeypatch, case, chunk):
    from soup_search.merge import merge_tensor, output_dtype, stream

    if chunk:
        monkeypatch.setattr(stream, "CHUNK", chunk)
    recipe = MergeRecipe.model_validate(BIT_IDENTICAL[case])
    out = merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, candidates_dir),
                        allow_negative=True, progress=False)
    got = load_file(out / "model.safetensors")
    assert set(got) == set(state_dicts["m0"])
    for name, tensor in got.items():
        inputs = {k: state_dicts[k][name] for k in recipe.model_keys}
        want = merge_tensor(recipe, name, inputs).to(output_dtype(recipe, torch.float32))
        assert tensor.dtype == want.dtype and torch.equal(tensor, want), name


def test_bf16_inputs_are_bit_identical_to_merge_tensor(bf16_pool, tmp_path, monkeypatch):
    from soup_search.merge import merge_tensor, stream

    monkeypatch.setattr(stream, "CHUNK", 1000)
    recipe = MergeRecipe.soup({"m0": 0.37, "m1": 0.63})
    out = merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, bf16_pool), progress=False)
    states = {k: load_file(bf16_pool / k / "model.safetensors") for k in ("m0", "m1")}
    for name, tensor in load_file(out / "model.safetensors").items():
        want = merge_tensor(recipe, name, {k: s[name] for k, s in states.items()}).to(torch.bfloat16)
        assert torch.equal(tensor, want), name


def test_integer_tensors_are_copied_from_the_first_model(candidates_dir, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from soup_search.merge import stream

    monkeypatch.setattr(stream, "CHUNK", 1000)
    ids = torch.arange(2500, dtype=torch.int64) * 7
    for i, k in enumerate(("m0", "m1")):
        shutil.copytree(candidates_dir / k, tmp_path / k)
        state = load_file(tmp_path / k / "model.safetensors")
        save_file({**state, "model.position_ids": ids + i}, str(tmp_path / k / "model.safetensors"))
    recipe = MergeRecipe.soup({"m0": 0.0, "m1": 1.0})
    got = load_file(merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, tmp_path),
                                  progress=False) / "model.safetensors")
    assert got["model.position_ids"].dtype == torch.int64 and torch.equal(got["model.position_ids"], ids)


def test_sharded_output_index_matches_the_files(candidates_dir, state_dicts, tmp_path):
    from transformers import AutoModelForCausalLM

    from soup_search.io.checkpoint_files import read_header

    recipe = MergeRecipe.soup({"m0": 0.5, "m3": 0.5})
    out = merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, candidates_dir),
                        max_file_bytes=20_000, progress=False)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    n = len(files)
    assert n > 2 and files == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    assert not (out / "model.safetensors").exists()
    assert sorted(p.name for p in out.glob("*.safetensors")) == files
    held = {}
    for file in files:
        header = read_header(out / file)
        assert header.data_start % 8 == 0
        assert json.loads(header.raw)["__metadata__"] == {"format": "pt", "soup_search_recipe": recipe.fingerprint()}
        tensors = load_file(out / file)
        assert set(tensors) == {k for k, v in index["weight_map"].items() if v == file}
        assert sum(t.nbytes for t in tensors.values()) <= 20_000 or len(tensors) == 1
        held.update(tensors)
    ref = state_dicts["m0"]
    assert set(held) == set(ref)
    assert index["metadata"] == {"total_size": sum(t.nbytes for t in ref.values()),
                                 "total_parameters": sum(t.numel() for t in ref.values())}
    for name, tensor in held.items():
        assert torch.equal(tensor, torch.mul(ref[name], 0.5).add_(state_dicts["m3"][name], alpha=0.5)), name
    sd = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert torch.equal(sd["model.layers.1.self_attn.q_proj.weight"], held["model.layers.1.self_attn.q_proj.weight"])


def test_failure_mid_write_leaves_nothing_and_keeps_the_old_output(candidates_dir, tmp_path):
    from soup_search.errors import MergeError
    from soup_search.io.atomic import MARKER

    # the NaN is in the last tensor of the layout, after several files were written
    root = poisoned_pool(candidates_dir, tmp_path / "candidates", key="m1", name="model.norm.weight")
    recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.5})
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    (out / MARKER).write_text("")  # an earlier soup-search output, which it may replace
    with pytest.raises(MergeError, match="model 'm1'"):
        merge_to_disk(recipe, out, resolve_model_paths(recipe, root), max_file_bytes=15_000, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "keep.txt"] and leftovers(tmp_path) == []


def test_writer_matches_safetensors_and_refuses_a_wrong_stream(tmp_path):
    from safetensors.torch import save_file

    from soup_search.io.checkpoint_files import read_header
    from soup_search.io.safetensors_format import TensorSpec, file_layout, write_streamed_checkpoint

    state = {"w": torch.randn(3, 5), "b": torch.randn(7, dtype=torch.float64).to(torch.bfloat16),
             "steps": torch.arange(3, dtype=torch.int64), "scale": torch.tensor(2.5), "mask": torch.tensor([True, False])}
    specs = [TensorSpec(k, tuple(t.shape), {torch.float32: "F32", torch.bfloat16: "BF16", torch.int64: "I64",
                                            torch.bool: "BOOL"}[t.dtype]) for k, t in sorted(state.items())]
    files = file_layout(specs, 2**20)
    order = [s.name for part in files for s in part]
    assert order == ["steps", "scale", "w", "b", "mask"]  # as safetensors orders a file
    out = write_streamed_checkpoint(tmp_path / "out", files, ((k, state[k]) for k in order), metadata={"a": "b"})
    save_file(state, str(tmp_path / "ref.safetensors"), metadata={"format": "pt", "a": "b"})
    ours, ref = read_header(out / "model.safetensors"), read_header(tmp_path / "ref.safetensors")
    assert ours.entries == ref.entries and json.loads(ours.raw) == json.loads(ref.raw)
    assert (out / "model.safetensors").read_bytes()[ours.data_start:] == \
        (tmp_path / "ref.safetensors").read_bytes()[ref.data_start:]
    with pytest.raises(ValueError, match="expected tensor 'steps' next, got 'mask'"):
        write_streamed_checkpoint(tmp_path / "bad", files, ((k, state[k]) for k in reversed(order)))
    with pytest.raises(ValueError, match="expected"):
        write_streamed_checkpoint(tmp_path / "bad", files, ((k, state[k].float()) for k in order))
    assert not (tmp_path / "bad").exists() and leftovers(tmp_path) == []


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to reset the peak RSS")
def test_peak_memory_stays_near_one_tensor_per_input(tmp_path):
    import subprocess
    import sys

    from soup_search.bench.merge import write_models

    paths = write_models(tmp_path, 3, 10_000_000, "float32")  # 3 x 40 MB, largest tensor 1.6 MB
    script = f"""
import re, torch
from pathlib import Path
from soup_search.merge import MergeRecipe
from soup_search.merge.stream import merge_to_disk
def kb(field):
    return int(re.search(field + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
before = kb("VmRSS")
merge_to_disk(MergeRecipe.soup({{"m0": 0.2, "m1": 0.3, "m2": 0.5}}), {str(tmp_path / "out")!r},
              {{f"m{{i}}": p for i, p in enumerate({[str(p) for p in paths]!r})}}, progress=False)
print(before, kb("VmHWM"))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after = (int(x) / 1024 for x in done.stdout.split())
    model_mb = (paths[0] / "model.safetensors").stat().st_size / 2**20
    # the old path (memory-mapped inputs, the shard held, save_file's copy) grew ~4 models; now ~4 tensors
    assert after - before < model_mb / 2, (before, after, model_mb)
