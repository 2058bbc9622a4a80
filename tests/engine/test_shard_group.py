"""Shards: byte-balanced partitions, in-memory merges equal to merge_tensor, the Ray shard group."""

from __future__ import annotations


import psutil
import pytest
import torch

from soup_search.candidates import load_candidates
from soup_search.errors import MergeError
from soup_search.merge import MergeRecipe, merge_tensor, output_dtype
from soup_search.engine.shard import Shard, partition_by_bytes
from soup_search.io.dtypes import array_to_torch, torch_dtype
from tests.helpers import make_candidates, tiny_llama_config

WEIGHTS = {"m0": 0.2, "m1": 0.3, "m2": 0.5}


@pytest.fixture(scope="module")
def candidates(tmp_path_factory):
    return load_candidates(make_candidates(tmp_path_factory.mktemp("candidates"), n=3))


@pytest.fixture(scope="module")
def bf16_candidates(tmp_path_factory):
    return load_candidates(make_candidates(tmp_path_factory.mktemp("pool16"), n=3, dtype=torch.bfloat16))


def cands(candidates):
    return [(c.name, c.path) for c in candidates.members]


def reference(candidates, recipe) -> dict[str, torch.Tensor]:
    """Every tensor merged in-process by merge_tensor from freshly read checkpoints."""
    readers = {c.name: candidates.reader(c.name) for c in candidates.members}
    keys = [m.model for m in recipe.models]
    out = {}
    for name, info in candidates.tensor_infos.items():
        base = readers[recipe.base_model].get(name) if recipe.base_model else None
        merged = merge_tensor(recipe, name, {k: readers[k].get(name) for k in keys}, base)
        out[name] = merged.to(output_dtype(recipe, torch_dtype(info.dtype)))
    return out


# ---------------------------------------------------------------- partition
def test_partition_balances_bytes_and_is_deterministic():
    sizes = {f"t{i}": s for i, s in enumerate([100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 5, 5])}
    parts = partition_by_bytes(sizes, 3)
    assert parts == partition_by_bytes(dict(sizes), 3)
    assert sorted(n for p in parts for n in p) == sorted(sizes)
    loads = [sum(sizes[n] for n in p) for p in parts]
    assert max(loads) - min(loads) <= 10  # 560 bytes into 3: greedy gets within the smallest-but-one
    for p in parts:  # names keep the input order
        assert p == [n for n in sizes if n in p]


def test_partition_of_a_real_pool_and_bad_counts(candidates):
    parts = partition_by_bytes(candidates.tensor_infos, 2)
    loads = [sum(candidates.tensor_infos[n].nbytes for n in p) for p in parts]
    assert abs(loads[0] - loads[1]) <= max(i.nbytes for i in candidates.tensor_infos.values())
    assert partition_by_bytes(candidates.tensor_infos, 1) == [list(candidates.tensor_infos)]
    with pytest.raises(MergeError, match="n_shards <="):
        partition_by_bytes(candidates.tensor_infos, len(candidates.tensor_infos) + 1)
    with pytest.raises(MergeError, match="at least 1"):
        partition_by_bytes(candidates.tensor_infos, 0)


# ---------------------------------------------------------------- Shard (no Ray)
def test_shard_linear_equals_direct_torch_and_merge_tensor(candidates):
    names = partition_by_bytes(candidates.tensor_infos, 2)[0]
    shard = Shard(cands(candidates), names)
    recipe = MergeRecipe.soup(WEIGHTS)
    out = shard.merge(recipe)
    assert sorted(out) == sorted(names)
    ref = reference(candidates, recipe)
    readers = {c.name: candidates.reader(c.name) for c in candidates.members}
    for n in names:
        direct = sum(w * readers[k].get(n) for k, w in WEIGHTS.items()) / sum(WEIGHTS.values())
        torch.testing.assert_close(torch.from_numpy(out[n]), direct, rtol=1e-6, atol=1e-7)
        assert torch.equal(torch.from_numpy(out[n]), ref[n]), n  # bit-identical to merge_tensor
    # reused buffers (the actor's mode) give the same numbers, and a second merge changes them in place
    again = shard.merge(recipe, reuse_buffers=True)
    assert all(torch.equal(torch.from_numpy(again[n]), ref[n]) for n in names)
    assert shard.stats()["merges"] == 2


@pytest.mark.parametrize("method,params", [
    ("task_arithmetic", {"lambda": 0.8}),
    ("ties", {"density": 0.5}),
])
def test_shard_generic_methods_equal_merge_tensor(candidates, method, params):
    recipe = MergeRecipe.soup({"m1": 0.6, "m2": 0.4}, method=method, base_model="m0", **params)
    shard = Shard(cands(candidates), list(candidates.tensor_infos))
    out = shard.merge(recipe)
    ref = reference(candidates, recipe)
    for n in candidates.tensor_infos:
        assert torch.equal(torch.from_numpy(out[n]), ref[n]), n


def test_shard_bf16_linear_matches_merge_tensor(bf16_candidates):
    recipe = MergeRecipe.soup(WEIGHTS)
    shard = Shard(cands(bf16_candidates), list(bf16_candidates.tensor_infos))
    out = shard.merge(recipe)
    ref = reference(bf16_candidates, recipe)
    for n, array in out.items():
        got = array_to_torch(array, torch.bfloat16)
        assert got.dtype == ref[n].dtype == torch.bfloat16
        assert torch.equal(got, ref[n]), n


def test_shard_refuses_unknown_models(candidates):
    shard = Shard(cands(candidates), list(candidates.tensor_infos)[:2])
    with pytest.raises(MergeError, match="not in the candidate set"):
        shard.merge(MergeRecipe.soup({"m0": 0.5, "nope": 0.5}))


# ---------------------------------------------------------------- ShardGroup (real Ray)
@pytest.fixture(scope="module")
def sharded(ray_session, candidates):
    from soup_search.engine.shard_group import ShardGroup

    with ShardGroup(candidates, n_shards=2, cache_size=4) as sp:
        yield sp


def test_shard_group_equals_in_process_merge_and_loads_into_llama(sharded, candidates):
    from transformers import LlamaForCausalLM

    recipe = MergeRecipe.soup({"m0": 0.1, "m1": 0.7, "m2": 0.2})
    state = sharded.merged_state_dict(recipe)
    ref = reference(candidates, recipe)
    assert list(state) == list(candidates.tensor_infos)
    assert all(torch.equal(state[n], ref[n]) for n in ref)
    model = LlamaForCausalLM(tiny_llama_config())
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.lm_head.weight.detach(), ref["lm_head.weight"])


def test_shard_group_cache_returns_same_refs_without_merging(sharded):
    recipe = MergeRecipe.soup({"m0": 0.25, "m1": 0.25, "m2": 0.5})
    before = [s["merges"] for s in sharded.stats()]
    refs = sharded.merge(recipe)
    assert sharded.merge(MergeRecipe.soup({"m0": 0.25, "m1": 0.25, "m2": 0.5})) is refs
    after = [s["merges"] for s in sharded.stats()]
    assert after == [b + 1 for b in before]
    fresh = sharded.merge(recipe, cache=False)
    assert fresh is not refs
    assert [s["merges"] for s in sharded.stats()] == [a + 1 for a in after]


def test_shard_group_refuses_unknown_models_before_dispatch(sharded):
    with pytest.raises(MergeError, match="not in the candidate set"):
        sharded.merge(MergeRecipe.soup({"m0": 0.5, "nope": 0.5}))


def test_shard_group_survives_a_killed_actor(sharded, candidates, ray_session):
    old_pid = sharded.stats()[0]["pid"]
    crashed = psutil.Process(old_pid)
    crashed.kill()  # a crash: the actor's process dies
    crashed.wait(timeout=60)
    # the next call waits for Ray to restart the actor (max_restarts) and runs there (max_task_retries)
    assert sharded.stats()[0]["pid"] != old_pid
    recipe = MergeRecipe.soup({"m0": 0.4, "m1": 0.4, "m2": 0.2})
    state = sharded.merged_state_dict(recipe)
    ref = reference(candidates, recipe)
    assert all(torch.equal(state[n], ref[n]) for n in ref)
    assert sharded.stats()[0]["merges"] == 1  # the new actor reloaded its shard and merged once


def test_merge_to_checkpoint_writes_a_loadable_model(sharded, candidates, tmp_path):
    from transformers import LlamaForCausalLM

    recipe = MergeRecipe.soup(WEIGHTS)
    out = sharded.merge_to_checkpoint(recipe, tmp_path / "soup")
    assert (out / "tokenizer.json").is_file() and (out / "config.json").is_file()
    model = LlamaForCausalLM.from_pretrained(out)
    ref = reference(candidates, recipe)
    assert torch.equal(model.model.embed_tokens.weight.detach(), ref["model.embed_tokens.weight"])
