"""TSV-Merge and WUDI: against references written from the papers' equations, their properties,
bad parameters, and recipes through ``soup-search merge`` and the shard actors.

The references are plain and slow on purpose: numpy float64 SVDs for TSV, autograd through the
paper's loss with ``torch.optim.Adam`` for WUDI. Where FusionBench is available (importable here,
or ``$SOUP_SEARCH_FUSION_BENCH_PYTHON`` naming a Python that has it: it pins lightning, hydra and
omegaconf, so it is best kept in a venv of its own) its own functions are compared too.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from soup_search.candidates import load_candidates
from soup_search.engine.shard import Shard
from soup_search.errors import ConfigError, MergeError
from soup_search.merge import MergeRecipe, merge_tensor
from soup_search.merge.tsv import tsv_matrix
from soup_search.merge.wudi import wudi_loss, wudi_matrix
from tests.helpers import cli, make_candidates

MODELS = ("m1", "m2", "m3")


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the shard actors and ``soup-search merge`` run (the same bits, and no
    spin-waiting on this shared 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- references, straight from the papers --------------------------------------------------------
def task_vectors(base, thetas, weights):
    return [w * (t.double().numpy() - base.double().numpy()) for t, w in zip(thetas, weights)]


def ref_tsv(base, thetas, weights, fraction=None, lam=1.0):
    """TSV-M (arXiv 2412.00081, Sec. 5): per-task SVD, top 1/T components, Procrustes on the
    concatenated U and V, reconstruct; the mean of the task vectors for other tensors."""
    taus = task_vectors(base, thetas, weights)
    if base.dim() != 2:
        return torch.from_numpy(base.double().numpy() + lam * sum(taus) / len(taus))
    k = int(min(base.shape) * (fraction or 1 / len(taus)))
    svds = [np.linalg.svd(t, full_matrices=False) for t in taus]
    u = np.hstack([u[:, :k] for u, _, _ in svds])
    s = np.concatenate([s[:k] for _, s, _ in svds])
    v = np.hstack([vt[:k].T for _, _, vt in svds])

    def procrustes(a):
        p, _, qt = np.linalg.svd(a, full_matrices=False)
        return p @ qt

    tau = procrustes(u) @ np.diag(s) @ procrustes(v).T
    return torch.from_numpy(base.double().numpy() + lam * tau)


def ref_wudi(base, thetas, weights, steps=300, lr=1e-5, lam=1.0):
    """WUDI (arXiv 2503.08099, Eq. 11): Adam on sum_i ||(tau - tau_i) tau_i^T||^2 / ||tau_i||^2 from
    the sum of the task vectors; the mean of the task vectors for other tensors."""
    taus = [torch.from_numpy(t) for t in task_vectors(base, thetas, weights)]
    if base.dim() != 2:
        return base.double() + lam * sum(taus) / len(taus)
    tau = torch.nn.Parameter(sum(taus).clone())
    adam = torch.optim.Adam([tau], lr=lr)
    for _ in range(steps):
        loss = sum(((tau - t) @ t.T).square().sum() / t.square().sum() for t in taus)
        adam.zero_grad()
        loss.backward()
        adam.step()
    return base.double() + lam * tau.detach()


def recipe(method: str, weights=None, **params) -> MergeRecipe:
    return MergeRecipe.model_validate({
        "models": [{"model": k, **({"parameters": {"weight": weights[k]}} if weights else {})} for k in MODELS],
        "merge_method": method, "base_model": "m0", "parameters": params})


def check_all(r, sds, reference, rtol=1e-5, atol=1e-6):
    names = list(sds["m0"])
    assert len(names) == 21 and any(sds["m0"][n].dim() == 1 for n in names)
    for name in names:
        got = merge_tensor(r, name, {k: sds[k][name] for k in MODELS}, sds["m0"][name])
        assert got.dtype == torch.float32 and got.shape == sds["m0"][name].shape
        want = reference(sds["m0"][name], [sds[k][name] for k in MODELS])
        torch.testing.assert_close(got.double(), want, rtol=rtol, atol=atol, msg=name)


# -- TSV -----------------------------------------------------------------------------------------
def test_tsv_equals_the_paper_reference_on_every_tensor(state_dicts):
    weights = {"m1": 1.0, "m2": 0.6, "m3": -0.4}
    # float32 SVDs against float64 ones: ~1e-6 where a task's k-th and (k+1)-th singular values are close
    check_all(recipe("tsv", weights, **{"lambda": 0.8}), state_dicts,
              lambda b, ts: ref_tsv(b, ts, weights.values(), lam=0.8), atol=1e-5)
    check_all(recipe("tsv", fraction=0.5), state_dicts, lambda b, ts: ref_tsv(b, ts, [1, 1, 1], fraction=0.5),
              atol=1e-5)


def test_tsv_one_task_with_fraction_one_gives_the_task_vector_back(state_dicts):
    r = MergeRecipe.model_validate({"models": [{"model": "m1"}], "merge_method": "tsv", "base_model": "m0",
                                    "parameters": {"fraction": 1.0}})
    for name in ("model.layers.0.mlp.down_proj.weight", "lm_head.weight", "model.norm.weight"):
        base, theta = state_dicts["m0"][name], state_dicts["m1"][name]
        torch.testing.assert_close(merge_tensor(r, name, {"m1": theta}, base), theta, rtol=0, atol=2e-6)


def test_tsv_of_mutually_orthogonal_low_rank_task_vectors_is_their_sum():
    """Orthogonal singular vectors across tasks are already decorrelated: TSV = task arithmetic."""
    g = torch.Generator().manual_seed(0)
    q_left, _ = torch.linalg.qr(torch.randn(12, 12, generator=g))
    q_right, _ = torch.linalg.qr(torch.randn(9, 9, generator=g))
    # three rank-3 task vectors on disjoint singular directions; k = int(9 / 3) = 3 keeps all of them
    taus = [q_left[:, 3 * i:3 * i + 3] @ torch.diag(torch.rand(3, generator=g) + 0.5) @ q_right[:, 3 * i:3 * i + 3].T
            for i in range(3)]
    torch.testing.assert_close(tsv_matrix(taus, 3), sum(taus), rtol=0, atol=1e-6)
    # keeping fewer components drops each task's weakest directions, nothing else
    truncated = []
    for t in taus:
        u, s, vh = torch.linalg.svd(t, full_matrices=False)
        truncated.append(u[:, :2] @ torch.diag(s[:2]) @ vh[:2])
    torch.testing.assert_close(tsv_matrix(taus, 2), sum(truncated), rtol=0, atol=1e-6)


def test_tsv_leaves_a_zero_task_vector_out_and_is_order_free(state_dicts):
    name = "model.layers.1.self_attn.o_proj.weight"
    base = state_dicts["m0"][name]
    tensors = {"m1": state_dicts["m1"][name], "m2": base.clone(), "m3": state_dicts["m3"][name]}
    got = merge_tensor(recipe("tsv"), name, tensors, base)
    k = int(min(base.shape) / 3)  # T still counts the frozen model
    want = base + tsv_matrix([tensors["m1"] - base, tensors["m3"] - base], k)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    shuffled = MergeRecipe.model_validate({**recipe("tsv").model_dump(), "models": [
        {"model": k} for k in ("m3", "m1", "m2")]})
    torch.testing.assert_close(merge_tensor(shuffled, name, tensors, base), got, rtol=0, atol=1e-6)


# -- WUDI ----------------------------------------------------------------------------------------
def test_wudi_equals_the_paper_reference_on_every_tensor(state_dicts):
    weights = {"m1": 1.0, "m2": 0.5, "m3": 0.8}
    r = recipe("wudi", weights, steps=40, lr=1e-3, **{"lambda": 0.7})
    check_all(r, state_dicts, lambda b, ts: ref_wudi(b, ts, weights.values(), steps=40, lr=1e-3, lam=0.7))


def test_wudi_defaults_are_the_papers_300_adam_steps_at_lr_1e_5(state_dicts):
    name = "model.layers.0.mlp.gate_proj.weight"
    tensors = {k: state_dicts[k][name] for k in MODELS}
    base = state_dicts["m0"][name]
    got = merge_tensor(recipe("wudi"), name, tensors, base)
    torch.testing.assert_close(got.double(), ref_wudi(base, list(tensors.values()), [1, 1, 1]), rtol=1e-5, atol=1e-6)
    moved = (got - (base + sum(t - base for t in tensors.values()))).abs().max()
    assert 1e-3 < moved <= 300 * 1e-5 * 1.1  # Adam moves an entry by about lr per step at most


def test_wudi_loss_decreases_and_converges_to_the_least_squares_minimiser():
    g = torch.Generator().manual_seed(1)
    taus = [torch.randn(6, 4, generator=g) for _ in range(3)]
    losses = [wudi_loss(wudi_matrix(taus, steps, 1e-2), taus) for steps in (0, 10, 100, 2000)]
    assert losses == sorted(losses, reverse=True) and len(set(losses)) == 4
    # the minimiser solves tau G = B (G = sum tau_i^T tau_i / |tau_i|^2, B = sum tau_i tau_i^T tau_i / |tau_i|^2)
    gram = sum(t.T @ t / t.square().sum() for t in taus)
    target = sum(t @ t.T @ t / t.square().sum() for t in taus)
    best = target @ torch.linalg.inv(gram)
    torch.testing.assert_close(wudi_matrix(taus, 2000, 1e-2), best, rtol=0, atol=1e-4)
    assert losses[-1] == pytest.approx(wudi_loss(best, taus), rel=1e-6) and losses[-1] < 0.6 * losses[0]


def test_wudi_of_task_vectors_on_orthogonal_inputs_is_their_sum():
    """Task vectors reading disjoint input features do not interfere: the loss is 0 at the sum."""
    g = torch.Generator().manual_seed(2)
    taus = [torch.zeros(5, 9) for _ in range(3)]
    for i, t in enumerate(taus):
        t[:, 3 * i:3 * i + 3] = torch.randn(5, 3, generator=g)
    assert wudi_loss(sum(taus), taus) == 0
    torch.testing.assert_close(wudi_matrix(taus, 300, 1e-2), sum(taus), rtol=0, atol=1e-6)


def test_wudi_leaves_a_zero_task_vector_out(state_dicts):
    name = "model.layers.0.self_attn.q_proj.weight"
    base = state_dicts["m0"][name]
    tensors = {"m1": state_dicts["m1"][name], "m2": base.clone(), "m3": state_dicts["m3"][name]}
    got = merge_tensor(recipe("wudi", steps=20, lr=1e-3), name, tensors, base)
    assert torch.isfinite(got).all()
    want = base + wudi_matrix([tensors["m1"] - base, tensors["m3"] - base], 20, 1e-3)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


# -- both ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["tsv", "wudi"])
def test_merges_are_deterministic(state_dicts, method):
    name = "lm_head.weight"
    tensors = {k: state_dicts[k][name] for k in MODELS}
    first = merge_tensor(recipe(method), name, tensors, state_dicts["m0"][name])
    again = merge_tensor(recipe(method), name, dict(tensors), state_dicts["m0"][name].clone())
    assert torch.equal(first, again)


@pytest.mark.parametrize("method,params,match", [
    ("tsv", {"fraction": 0.0}, "tsv: fraction 0.0 .* outside \\(0, 1\\]"),
    ("tsv", {"fraction": 1.5}, "tsv: fraction 1.5"),
    ("wudi", {"steps": -1}, "wudi: steps -1.0 .* not a whole number"),
    ("wudi", {"steps": 2.5}, "wudi: steps 2.5"),
    ("wudi", {"lr": 0.0}, "wudi: lr 0.0 .* not a positive number"),
    ("wudi", {"lr": float("nan")}, "wudi: lr nan"),
    ("wudi", {"steps": float("inf")}, "wudi: steps inf"),
])
def test_bad_parameters_are_one_line_merge_errors(state_dicts, method, params, match):
    name = "model.norm.weight"
    with pytest.raises(MergeError, match=match) as err:
        merge_tensor(recipe(method, **params), name, {k: state_dicts[k][name] for k in MODELS}, state_dicts["m0"][name])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("method", ["tsv", "wudi"])
def test_recipes_need_a_base_and_know_their_parameters(method):
    data = {"models": [{"model": "m1"}, {"model": "m2"}], "merge_method": method,
            "parameters": {"density": 0.5}}
    with pytest.raises(ConfigError) as err:
        MergeRecipe.model_validate(data)
    assert f"merge_method {method} needs a base_model" in str(err.value)
    assert f"parameters.density: unknown parameter for {method}" in str(err.value)


@pytest.mark.parametrize("method", ["tsv", "wudi"])
def test_to_yaml_writes_the_recipe_as_is_with_a_comment(method):
    r = recipe(method, {"m1": 1.0, "m2": 0.5, "m3": 0.5}, **{"lambda": 0.9})
    text = r.to_yaml()
    assert text.startswith(f"# mergekit has no '{method}' merge method: run this recipe with soup-search merge\n")
    assert MergeRecipe.from_yaml(text) == r


@pytest.mark.parametrize("method,params", [("tsv", {"lambda": 0.9}), ("wudi", {"steps": 50, "lr": 1e-4})])
def test_soup_search_merge_writes_the_same_tensors(candidates_dir, state_dicts, tmp_path, method, params):
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump({
        "models": [{"model": str(candidates_dir / k), "parameters": {"weight": w}}
                   for k, w in zip(MODELS, (1.0, 0.7, 0.5))],
        "merge_method": method, "base_model": str(candidates_dir / "m0"), "parameters": params}))
    out = tmp_path / "out"
    cli("merge", str(config), str(out), "-q")
    merged = load_file(out / "model.safetensors")
    r = MergeRecipe.from_yaml(config)
    keys = {str(candidates_dir / k): k for k in ("m0", *MODELS)}
    for name, got in merged.items():
        want = merge_tensor(r, name, {p: state_dicts[k][name] for p, k in keys.items()})
        assert torch.equal(got, want), name
    assert f"merge_method: {method}" in (out / "README.md").read_text()


# -- the shard actors: the general (not weighted-sum) path -----------------------------------------
RECIPES = {
    "tsv": MergeRecipe.soup({"m1": 1.0, "m2": 0.5}, method="tsv", base_model="m0", fraction=0.25),
    "wudi": MergeRecipe.soup({"m1": 1.0, "m2": 0.5}, method="wudi", base_model="m0", steps=30, lr=1e-3),
}


@pytest.fixture(scope="module")
def shard_candidates(tmp_path_factory):
    return load_candidates(make_candidates(tmp_path_factory.mktemp("tsv-wudi-shards"), n=3))


def in_process(candidates, recipe) -> dict[str, torch.Tensor]:
    readers = {c.name: candidates.reader(c.name) for c in candidates.members}
    return {n: merge_tensor(recipe, n, {k: readers[k].get(n) for k in ("m1", "m2")}, readers["m0"].get(n))
            for n in candidates.tensor_infos}


@pytest.mark.parametrize("method", RECIPES)
def test_a_shard_merges_them_like_merge_tensor(shard_candidates, method):
    recipe = RECIPES[method]
    assert recipe.plan().linear_form("lm_head.weight") is None
    out = Shard([(c.name, c.path) for c in shard_candidates.members], list(shard_candidates.tensor_infos)).merge(recipe)
    for name, want in in_process(shard_candidates, recipe).items():
        assert torch.equal(torch.from_numpy(out[name]), want), name


@pytest.mark.slow
def test_a_shard_group_merges_them_like_merge_tensor(ray_session, shard_candidates):
    from soup_search.engine.shard_group import ShardGroup

    with ShardGroup(shard_candidates, n_shards=2, cache_size=2) as group:
        for recipe in RECIPES.values():
            state = group.merged_state_dict(recipe)
            for name, want in in_process(shard_candidates, recipe).items():
                assert torch.equal(state[name], want), name


# -- FusionBench's own functions, where it is installed -----------------------------------------------
def fusion_bench_python() -> str | None:
    if os.environ.get("SOUP_SEARCH_FUSION_BENCH_PYTHON"):
        return os.environ["SOUP_SEARCH_FUSION_BENCH_PYTHON"]
    return sys.executable if importlib.util.find_spec("fusion_bench") is not None else None


FUSION_BENCH_SCRIPT = textwrap.dedent("""
    import sys, torch
    from fusion_bench.method.task_singular_vector.utils.TSVM_utils import compute_and_sum_svd_mem_reduction
    from fusion_bench.method.wudi.wudi import wudi_merging
    torch.set_num_threads(1)
    task_vectors = torch.load(sys.argv[1])
    tsv = compute_and_sum_svd_mem_reduction(task_vectors, accelerator="cpu")
    wudi = wudi_merging(task_vectors, accelerator="cpu", iter_num=300)
    torch.save({"tsv": tsv, "wudi": {k: v.detach() for k, v in wudi.items()}}, sys.argv[2])
""")


@pytest.mark.skipif(fusion_bench_python() is None,
                    reason="FusionBench not available (set SOUP_SEARCH_FUSION_BENCH_PYTHON)")
def test_agrees_with_fusion_bench(state_dicts, tmp_path):
    base = state_dicts["m0"]
    taus = [{n: state_dicts[k][n] - base[n] for n in base} for k in MODELS]
    torch.save(taus, tmp_path / "tv.pt")
    (tmp_path / "run.py").write_text(FUSION_BENCH_SCRIPT)
    subprocess.run([fusion_bench_python(), str(tmp_path / "run.py"), str(tmp_path / "tv.pt"), str(tmp_path / "fb.pt")],
                   check=True, capture_output=True, timeout=600)
    theirs = torch.load(tmp_path / "fb.pt")
    for method in ("tsv", "wudi"):
        for name in base:
            got = merge_tensor(recipe(method), name, {k: state_dicts[k][name] for k in MODELS}, base[name])
            torch.testing.assert_close(got - base[name], theirs[method][name], rtol=1e-4, atol=1e-6,
                                       msg=f"{method} {name}")
