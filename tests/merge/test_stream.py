"""Disk-to-disk merges: real checkpoints in, a loadable Hugging Face checkpoint out."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from soup_search.checkpoint import CheckpointReader
from soup_search.merge import MergeRecipe
from soup_search.merge.stream import merge_to_disk, resolve_model_paths


def merged_state(out) -> dict[str, torch.Tensor]:
    reader = CheckpointReader(out)
    return {name: reader.get(name) for name in reader.tensor_names}


def test_linear_merge_to_disk_matches_reference_and_loads(pool_dir, state_dicts, tmp_path):
    from transformers import AutoModelForCausalLM

    recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.3, "m2": 0.2})
    out = merge_to_disk(recipe, tmp_path / "soup", resolve_model_paths(recipe, pool_dir), progress=False)
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
                        max_shard_bytes=30_000, progress=False)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 1 and all((out / s).is_file() for s in shards)
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


def test_dtype_float16_output_from_float32_ties(pool_dir, state_dicts, tmp_path):
    recipe = MergeRecipe.from_yaml(f"""
models:
  - {{model: m1, parameters: {{weight: 0.6, density: 0.5}}}}
  - {{model: m2, parameters: {{weight: 0.4, density: 0.5}}}}
merge_method: ties
base_model: {pool_dir / "m0"}
dtype: float16
tokenizer_source: base
""")
    paths = resolve_model_paths(recipe, pool_dir)
    assert paths[str(pool_dir / "m0")] == pool_dir / "m0"
    out = merge_to_disk(recipe, tmp_path / "out", paths, progress=False)
    got = merged_state(out)
    assert all(t.dtype == torch.float16 for t in got.values())
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"
    assert (out / "tokenizer.json").read_bytes() == (pool_dir / "m0" / "tokenizer.json").read_bytes()
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


def test_missing_path_for_a_model(pool_dir, tmp_path):
    from soup_search.errors import MergeError

    recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.5})
    with pytest.raises(MergeError, match="no path"):
        merge_to_disk(recipe, tmp_path / "out", {"m0": pool_dir / "m0"}, progress=False)
    assert not (tmp_path / "out").exists()


def test_refuses_to_overwrite_an_input(pool_dir, tmp_path):
    from soup_search.errors import MergeError

    shutil.copytree(pool_dir / "m0", tmp_path / "m0")
    recipe = MergeRecipe.soup({"m0": 0.5, "m1": 0.5})
    paths = {"m0": tmp_path / "m0", "m1": pool_dir / "m1"}
    before = (tmp_path / "m0" / "model.safetensors").read_bytes()
    with pytest.raises(MergeError, match="is the input model 'm0'"):
        merge_to_disk(recipe, tmp_path / "m0", paths, progress=False)
    assert (tmp_path / "m0" / "model.safetensors").read_bytes() == before
