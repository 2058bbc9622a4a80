"""``MergeMethod.linear_form`` is the one rule both fast paths follow.

A toy method registered here says only, through ``linear_form``, that its merge is a
weighted sum; the shard fast path and the streaming disk path must both take it (its
``merge`` is never called) and give exactly what ``merge_tensor`` gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from soup_search.engine.shard import Shard
from soup_search.io.checkpoint import CheckpointReader
from soup_search.merge import MergeRecipe, merge_tensor
from soup_search.merge.method import MergeMethod, weighted_sum
from soup_search.merge.params import ParamSpec, TensorParams
from soup_search.merge.registry import METHODS, register
from soup_search.merge.stream import merge_to_disk, resolve_model_paths

CALLS: list[str] = []  # tensor names the toy method's merge() was called for


@dataclass(frozen=True)
class AnchoredMix(MergeMethod):
    """``base + sum(w_i * (theta_i - base))`` written as a weighted sum; nothing a fast path knows by name."""

    name: str = "anchored_mix_for_test"
    params: tuple = (ParamSpec("weight", float, "model", help="weight of this model"),)
    base: str = "required"

    def prepare(self, params: TensorParams):
        weights = tuple(params.column("weight"))
        return weights, 1.0 - sum(weights)

    def merge(self, prepared, tensors, base):
        CALLS.append("merge")
        coeffs, base_coeff = prepared
        return weighted_sum(tensors, coeffs, base, base_coeff)

    def linear_form(self, prepared):
        return prepared


@pytest.fixture
def recipe():
    register(AnchoredMix())
    try:
        yield MergeRecipe.model_validate({
            "models": [{"model": "m1", "parameters": {"weight": 0.75}},
                       {"model": "m2", "parameters": {"weight": -0.5}}],
            "merge_method": "anchored_mix_for_test", "base_model": "m0"})
    finally:
        del METHODS["anchored_mix_for_test"]


def reference(recipe, state_dicts) -> dict[str, torch.Tensor]:
    """merge_tensor per tensor: the generic path, through the method's merge()."""
    CALLS.clear()
    names = list(state_dicts["m0"])
    out = {n: merge_tensor(recipe, n, {k: state_dicts[k][n] for k in ("m1", "m2")}, state_dicts["m0"][n])
           for n in names}
    assert len(CALLS) == len(names)  # the generic path did call merge()
    CALLS.clear()
    return out


def test_shard_fast_path_takes_a_method_by_its_linear_form(candidates_dir, state_dicts, recipe):
    want = reference(recipe, state_dicts)
    shard = Shard([(f"m{i}", candidates_dir / f"m{i}") for i in range(3)], list(want))
    got = shard.merge(recipe)
    assert CALLS == []  # the blocked weighted sum, not merge() per tensor
    for name, tensor in want.items():
        assert torch.equal(torch.from_numpy(got[name]), tensor), name


def test_streaming_fast_path_takes_a_method_by_its_linear_form(candidates_dir, state_dicts, recipe, tmp_path):
    want = reference(recipe, state_dicts)
    out = merge_to_disk(recipe, tmp_path / "out", resolve_model_paths(recipe, candidates_dir), progress=False)
    assert CALLS == []  # chunked pread + weighted sum, not whole tensors through merge()
    reader = CheckpointReader(out)
    assert set(reader.tensor_names) == set(want)
    for name, tensor in want.items():
        assert torch.equal(reader.get(name), tensor), name


def test_linear_form_of_each_method(recipe):
    ties = MergeRecipe.model_validate({
        "models": [{"model": "m1", "parameters": {"weight": 0.7, "density": 0.5}},
                   {"model": "m2", "parameters": {"weight": 0.3, "density": 0.5}}],
        "merge_method": "ties", "base_model": "m0"})
    assert ties.plan().linear_form("lm_head.weight") is None
    assert recipe.plan().linear_form("lm_head.weight") == ((0.75, -0.5), 0.75)
    assert MergeRecipe.soup({"m0": 1.0, "m1": 3.0}).plan().linear_form("lm_head.weight") == ((0.25, 0.75), 0.0)
