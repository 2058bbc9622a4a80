"""Shard memory modes: a memory-mapped shard merges bit for bit like a resident one and holds no copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soup_search.candidates import load_candidates
from soup_search.engine.shard import Shard, partition_by_bytes
from soup_search.errors import MergeError
from soup_search.merge import MergeRecipe
from tests.helpers import make_candidates

RECIPES = {
    "linear": MergeRecipe.soup({"m0": 0.2, "m1": 0.3, "m2": 0.5}),
    "linear-to-bf16": MergeRecipe.soup({"m0": 0.25, "m1": 0.25, "m2": 0.5}).model_copy(
        update={"out_dtype": "bfloat16"}),
    "gradient": MergeRecipe.model_validate({  # per-layer weights: several weighted-sum runs
        "models": [{"model": "m0", "parameters": {"weight": [0.0, 1.0]}},
                   {"model": "m1", "parameters": {"weight": [{"filter": "mlp", "value": [1.0, 0.5]},
                                                             {"value": 1.0}]}}],
        "merge_method": "linear", "parameters": {"normalize": False}}),
    "task_arithmetic": MergeRecipe.soup({"m1": 0.6, "m2": 0.4}, method="task_arithmetic", base_model="m0",
                                        **{"lambda": 0.8}),
    "ties": MergeRecipe.soup({"m1": 0.6, "m2": 0.4}, method="ties", base_model="m0", density=0.5),
}


@pytest.fixture(scope="module", params=[torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def candidates(request, tmp_path_factory):
    # several weight files (an index), so tensors sit at many offsets in several files
    root = tmp_path_factory.mktemp(f"cands-{str(request.param)[6:]}")
    return load_candidates(make_candidates(root, n=3, dtype=request.param, max_shard_size="20KB"))


def cands(candidates):
    return [(c.name, c.path) for c in candidates.members]


def assert_same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]):
    assert list(a) == list(b)
    for n in a:
        assert a[n].dtype == b[n].dtype and a[n].shape == b[n].shape, n
        assert a[n].tobytes() == b[n].tobytes(), n


@pytest.mark.parametrize("recipe", RECIPES.values(), ids=RECIPES.keys())
def test_mmap_merges_bit_for_bit_like_resident(candidates, recipe):
    assert len(candidates.reader("m0").files) > 1
    names = partition_by_bytes(candidates.tensor_infos, 2)[1]
    resident = Shard(cands(candidates), names, memory="resident")
    mapped = Shard(cands(candidates), names, memory="mmap")
    expected = resident.merge(recipe)
    assert_same_bits(mapped.merge(recipe), expected)
    # the actor's reused output buffers give the same bits, merge after merge
    assert_same_bits(mapped.merge(recipe, reuse_buffers=True), expected)
    assert_same_bits(mapped.merge(recipe, reuse_buffers=True), expected)
    assert mapped.stats()["merges"] == 3


def test_mmap_holds_no_resident_copy(candidates):
    names = list(candidates.tensor_infos)
    shard_bytes = 3 * sum(candidates.tensor_infos[n].nbytes for n in names)
    resident = Shard(cands(candidates), names).stats()
    mapped = Shard(cands(candidates), names, memory="mmap").stats()
    assert (resident["memory"], resident["resident_bytes"], resident["mapped_bytes"]) == ("resident", shard_bytes, 0)
    assert (mapped["memory"], mapped["resident_bytes"], mapped["mapped_bytes"]) == ("mmap", 0, shard_bytes)


def test_mmap_reads_the_files_pages_not_a_copy(tmp_path):
    """Bytes changed in a weight file in place show in the next mapped merge, not in a resident one."""
    paths = make_candidates(tmp_path / "c", n=2)
    candidates = load_candidates(paths)
    name = "lm_head.weight"
    recipe = MergeRecipe.soup({"m0": 1.0, "m1": 0.0})
    resident = Shard(cands(candidates), [name])
    mapped = Shard(cands(candidates), [name], memory="mmap")
    before = mapped.merge(recipe)[name].copy()
    info = candidates.reader("m0").info(name)
    with open(info.file, "r+b") as fh:  # same size, new values: the page cache now holds zeros
        fh.seek(info.offset)
        fh.write(bytes(info.nbytes))
    assert before.any()
    assert not mapped.merge(recipe)[name].any()
    assert np.array_equal(resident.merge(recipe)[name], before)


def test_unknown_memory_mode_is_refused(candidates):
    with pytest.raises(MergeError, match="use one of resident, mmap"):
        Shard(cands(candidates), list(candidates.tensor_infos)[:1], memory="swap")
