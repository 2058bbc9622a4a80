"""Every merge method against a hand-written torch reference on real tiny checkpoints."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from soup_search.errors import MergeError
from soup_search.merge import MergeRecipe, merge_tensor, output_dtype, reasoning_vector
from soup_search.merge.ties import magnitude


# -- references, straight from the math ------------------------------------------------------
def ref_linear(tensors, weights, normalize=True):
    out = sum(w * t.double() for t, w in zip(tensors, weights))
    return out / sum(weights) if normalize else out


def ref_task_arithmetic(base, tensors, weights, lam=1.0, normalize=False):
    delta = sum(w * (t.double() - base.double()) for t, w in zip(tensors, weights))
    if normalize:
        delta = delta / sum(weights)
    return base.double() + lam * delta


def ref_topk(delta, density):
    """Keep the int(density * numel) (at least 1) largest-magnitude entries."""
    if density >= 1:
        return delta
    k = max(1, int(density * delta.numel()))
    order = torch.argsort(delta.abs().flatten(), descending=True)
    keep = torch.zeros(delta.numel(), dtype=torch.bool)
    keep[order[:k]] = True
    return torch.where(keep.view_as(delta), delta, torch.zeros_like(delta))


def ref_ties(base, tensors, weights, densities, lam=1.0, normalize=True):
    base = base.double()
    deltas = [w * ref_topk(t.double() - base, d) for t, w, d in zip(tensors, weights, densities)]
    elected = torch.where(sum(deltas) >= 0, 1.0, -1.0).double()
    total = torch.zeros_like(base)
    divisor = torch.zeros_like(base)
    for delta, w in zip(deltas, weights):
        agree = torch.sign(delta) == elected
        total += torch.where(agree, delta, 0.0)
        divisor += torch.where(agree, w, 0.0)
    if normalize:
        total = total / torch.where(divisor == 0, 1.0, divisor)
    return base + lam * total


def check_all(recipe, sds, reference, base_key=None, **kw):
    names = list(next(iter(sds.values())))
    assert len(names) == 21
    for name in names:
        tensors = {k: sd[name] for k, sd in sds.items()}
        base = sds[base_key][name] if base_key else None
        got = merge_tensor(recipe, name, tensors, base, **kw)
        assert got.dtype == torch.float32
        want = reference(name, tensors)
        assert torch.allclose(got.double(), want, rtol=1e-5, atol=1e-6), name


def recipe(text: str) -> MergeRecipe:
    return MergeRecipe.from_yaml(text)


# -- linear ----------------------------------------------------------------------------------
def test_linear_normalizes_by_default(state_dicts):
    r = MergeRecipe.soup({"m0": 2.0, "m1": 1.0, "m2": 1.0})
    check_all(r, state_dicts, lambda n, t: ref_linear([t["m0"], t["m1"], t["m2"]], [2, 1, 1]))


def test_linear_without_normalize(state_dicts):
    r = MergeRecipe.soup({"m0": 0.9, "m1": 0.6}, normalize=False)
    check_all(r, state_dicts, lambda n, t: ref_linear([t["m0"], t["m1"]], [0.9, 0.6], normalize=False))


def test_linear_zero_weight_model_is_not_read(state_dicts):
    r = MergeRecipe.soup({"m0": 0.5, "m1": 0.0, "m2": 0.5})
    name = "model.norm.weight"
    nan = torch.full_like(state_dicts["m1"][name], float("nan"))
    got = merge_tensor(r, name, {"m0": state_dicts["m0"][name], "m1": nan, "m2": state_dicts["m2"][name]})
    assert torch.allclose(got, (state_dicts["m0"][name] + state_dicts["m2"][name]) / 2)


def test_linear_zero_sum_with_normalize_is_refused(state_dicts):
    r = MergeRecipe.soup({"m0": 1.0, "m1": -1.0})
    name = "model.norm.weight"
    with pytest.raises(MergeError, match="sum to zero"):
        merge_tensor(r, name, {k: state_dicts[k][name] for k in ("m0", "m1")})


def test_linear_base_model_not_listed_is_an_input_with_top_level_weight(state_dicts):
    r = recipe("""
models: [{model: m1, parameters: {weight: 3.0}}]
merge_method: linear
base_model: m0
parameters: {weight: 1.0}
""")
    check_all(r, state_dicts, lambda n, t: ref_linear([t["m1"], t["m0"]], [3, 1]))


# -- task arithmetic -------------------------------------------------------------------------
def test_task_arithmetic_defaults_no_normalize_lambda_one(state_dicts):
    r = recipe("""
models:
  - {model: m0}
  - {model: m1, parameters: {weight: 0.7}}
  - {model: m2, parameters: {weight: 0.6}}
merge_method: task_arithmetic
base_model: m0
""")
    check_all(r, state_dicts, lambda n, t: ref_task_arithmetic(t["m0"], [t["m1"], t["m2"]], [0.7, 0.6]))


def test_task_arithmetic_lambda_normalize_and_negative(state_dicts):
    r = MergeRecipe.soup({"m1": 0.7, "m2": -0.3, "m3": 0.5}, method="task_arithmetic", base_model="m0",
                         normalize=True, lambda_=0.8)
    check_all(r, state_dicts, lambda n, t: ref_task_arithmetic(
        t["m0"], [t["m1"], t["m2"], t["m3"]], [0.7, -0.3, 0.5], lam=0.8, normalize=True), base_key="m0")


def test_reasoning_vector_is_target_plus_alpha_a_minus_b(state_dicts):
    r = reasoning_vector("m0", "m1", "m2", alpha=0.5)
    assert r.merge_method == "task_arithmetic" and r.base_model == "m0"
    check_all(r, state_dicts, lambda n, t: t["m0"].double() + 0.5 * (t["m1"].double() - t["m2"].double()))
    # a == target: theta_t + alpha (theta_t - theta_b)
    r2 = reasoning_vector("m0", "m0", "m2", alpha=2.0)
    check_all(r2, state_dicts, lambda n, t: t["m0"].double() + 2.0 * (t["m0"].double() - t["m2"].double()))


# -- ties ------------------------------------------------------------------------------------
def test_ties_against_reference(state_dicts):
    r = recipe("""
models:
  - {model: m0}
  - {model: m1, parameters: {weight: 0.7, density: 0.5}}
  - {model: m2, parameters: {weight: 0.5, density: 0.3}}
  - {model: m3, parameters: {weight: 0.4, density: 0.8}}
merge_method: ties
base_model: m0
""")
    check_all(r, state_dicts, lambda n, t: ref_ties(
        t["m0"], [t["m1"], t["m2"], t["m3"]], [0.7, 0.5, 0.4], [0.5, 0.3, 0.8]))


def test_ties_no_normalize_lambda_negative_weight(state_dicts):
    r = MergeRecipe.soup({"m1": 1.0, "m2": -0.5, "m3": 0.5}, method="ties", base_model="m0",
                         density=0.4, normalize=False, lambda_=1.5)
    check_all(r, state_dicts, lambda n, t: ref_ties(
        t["m0"], [t["m1"], t["m2"], t["m3"]], [1.0, -0.5, 0.5], [0.4] * 3, lam=1.5, normalize=False),
        base_key="m0")


def test_ties_density_defaults_to_one_keeping_everything(state_dicts):
    r = MergeRecipe.soup({"m1": 0.5, "m2": 0.5}, method="ties", base_model="m0")
    check_all(r, state_dicts, lambda n, t: ref_ties(t["m0"], [t["m1"], t["m2"]], [0.5, 0.5], [1.0, 1.0]),
              base_key="m0")


def test_magnitude_keeps_int_density_times_numel():
    x = torch.arange(1, 101, dtype=torch.float32) * torch.tensor([1.0, -1.0]).repeat(50)
    kept = magnitude(x, 0.3)
    assert int((kept != 0).sum()) == 30
    assert set(kept[kept != 0].abs().tolist()) == set(range(71, 101))
    assert int((magnitude(x, 0.001) != 0).sum()) == 1  # at least one survives
    assert int((magnitude(x, 0.0) != 0).sum()) == 0
    rescaled = magnitude(x, 0.3, rescale=True)
    assert torch.isclose(rescaled.abs().sum(), x.abs().sum())


def test_ties_sign_election_by_weighted_sum_ties_go_positive():
    base = torch.zeros(3)
    a = torch.tensor([1.0, -2.0, 1.0])
    b = torch.tensor([-3.0, 1.0, -1.0])
    r = MergeRecipe.soup({"a": 1.0, "b": 1.0}, method="ties", base_model="base")
    got = merge_tensor(r, "x", {"a": a, "b": b}, base)
    # sums: -2 (elect -: only b), -1 (elect -: only a), 0 (tie -> +: only a); normalized by agreeing weight 1
    assert got.tolist() == [-3.0, -2.0, 1.0]


# -- interpolate -----------------------------------------------------------------------------
GROUPS = {"self_attn": 0.3, "mlp": 0.9, "embed_tokens": 0.0, "norm": 0.25, "lm_head": 1.0}


def test_interpolate_groups(state_dicts):
    r = recipe("""
models: [{model: m2}, {model: m1}]
merge_method: interpolate
parameters:
  lambda: {attention: 0.3, mlp: 0.9, embeddings: 0.0, norms: 0.25, lm_head: 1.0, default: 0.5}
""")

    def ref(name, t):
        lam = next((v for f, v in GROUPS.items() if f in name), 0.5)
        return lam * t["m2"].double() + (1 - lam) * t["m1"].double()

    check_all(r, {k: state_dicts[k] for k in ("m1", "m2")}, ref)


def test_interpolate_exported_linear_yaml_merges_identically(state_dicts):
    r = recipe("""
models: [{model: m0}, {model: m3}]
merge_method: interpolate
parameters: {lambda: [{filter: mlp, value: 0.8}, {value: 0.35}]}
""")
    lin = MergeRecipe.from_yaml(r.to_yaml())
    assert lin.merge_method == "linear" and lin.parameters == {"normalize": False}
    for name in state_dicts["m0"]:
        tensors = {k: state_dicts[k][name] for k in ("m0", "m3")}
        assert torch.allclose(merge_tensor(r, name, tensors), merge_tensor(lin, name, tensors), atol=1e-7)


# -- per-tensor parameters -------------------------------------------------------------------
def test_conditional_filters_first_match_wins_and_fall_through(state_dicts):
    r = recipe("""
models:
  - model: m0
    parameters:
      weight: [{filter: q_proj, value: 0.9}, {filter: self_attn, value: 0.1}]
  - model: m1
    parameters: {weight: 1.0}
merge_method: linear
parameters: {weight: 0.4, normalize: false}
""")

    def ref(name, t):
        w0 = 0.9 if "q_proj" in name else 0.1 if "self_attn" in name else 0.4  # no match -> top level
        return ref_linear([t["m0"], t["m1"]], [w0, 1.0], normalize=False)

    check_all(r, {k: state_dicts[k] for k in ("m0", "m1")}, ref)


def test_gradient_interpolates_over_layers(deep_pool):
    sds = {k: load_file(deep_pool / k / "model.safetensors") for k in ("d0", "d1")}
    r = recipe("""
models:
  - {model: d0, parameters: {weight: [0.0, 1.0]}}
  - {model: d1, parameters: {weight: [{filter: mlp, value: [1.0, 0.5, 0.0]}, {value: 1.0}]}}
merge_method: linear
parameters: {normalize: false}
""")

    def ref(name, t):
        layer = int(name.split(".")[2]) if ".layers." in name else None
        pos = 0.0 if layer is None else layer / 2  # 3 layers: t = 0, 0.5, 1; outside layers t = 0
        w0 = pos
        w1 = 1.0 - pos if "mlp" in name else 1.0
        return ref_linear([t["d0"], t["d1"]], [w0, w1], normalize=False)

    names = list(sds["d0"])
    for name in names:
        tensors = {k: sds[k][name] for k in sds}
        got = merge_tensor(r, name, tensors, num_layers=3)
        assert torch.allclose(got.double(), ref(name, tensors), atol=1e-6), name
    with pytest.raises(MergeError, match="num_layers"):
        merge_tensor(r, "model.layers.1.mlp.up_proj.weight", {k: sds[k]["model.layers.1.mlp.up_proj.weight"] for k in sds})


# -- dtypes ----------------------------------------------------------------------------------
def test_bf16_inputs_accumulate_in_float32(bf16_pool):
    sds = {k: load_file(bf16_pool / k / "model.safetensors") for k in ("m0", "m1")}
    r = MergeRecipe.soup({"m0": 0.3, "m1": 0.7})
    for name in sds["m0"]:
        tensors = {k: sd[name] for k, sd in sds.items()}
        assert tensors["m0"].dtype == torch.bfloat16
        got = merge_tensor(r, name, tensors)
        assert got.dtype == torch.float32
        want = 0.3 * tensors["m0"].double() + 0.7 * tensors["m1"].double()
        assert torch.allclose(got.double(), want, rtol=1e-6, atol=1e-7)
        # (bf16 accumulation would miss rtol=1e-6 by far); one rounding to bf16 at the end
        out = got.to(output_dtype(r, torch.bfloat16))
        assert bool(((out.double() - want).abs() <= want.abs() * 2**-7 + 1e-8).all())  # one bf16 ulp
    assert output_dtype(r, torch.bfloat16) == torch.bfloat16
    assert output_dtype(MergeRecipe.soup({"a": 1.0}).model_copy(update={"dtype": "float16"}), torch.float32) == torch.float16


def test_missing_model_tensor_is_a_merge_error(state_dicts):
    r = MergeRecipe.soup({"m0": 0.5, "m1": 0.5})
    with pytest.raises(MergeError, match="m1"):
        merge_tensor(r, "model.norm.weight", {"m0": state_dicts["m0"]["model.norm.weight"]})
