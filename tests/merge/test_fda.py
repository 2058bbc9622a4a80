"""FDA (functional dual anchors): determinism under a seed, the two stages doing what they
promise on tiny real checkpoints, bad parameters, the per-tensor paths refusing it, and
``soup-search merge`` with an fda recipe.

The experts are the base plus seeded noise (fine-tuned models in miniature), with few anchors and
steps so that the whole file runs in seconds.
"""

from __future__ import annotations

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from soup_search.candidates import load_candidates
from soup_search.cli import main
from soup_search.config import load_config
from soup_search.engine.shard import Shard
from soup_search.errors import ConfigError, MergeError
from soup_search.merge import MergeRecipe, merge_tensor
from soup_search.merge.anchors import (
    GAUSSIAN_SIGMA, Targets, construct_anchors, fit_loss, fit_part, gradient_mismatch, initial_anchors, model_parts,
)
from soup_search.merge.fda import FDASettings, fda_merge
from soup_search.zoo.tokenizer import build_char_tokenizer
from tests.helpers import cli, make_checkpoint

SMALL = FDASettings(anchors=4, tokens=4, anchor_steps=5, fit_steps=5, fit_lr=1e-3)
EXPERTS = ("e1", "e2")


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as ``soup-search merge`` runs FDA (the same bits on any machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """``base`` (a tiny Llama) and experts ``e1``, ``e2``: the base plus seeded noise of std 0.02."""
    root = tmp_path_factory.mktemp("fda")
    make_checkpoint(root / "base", seed=0)
    for i, name in enumerate(EXPERTS, 1):
        model = AutoModelForCausalLM.from_pretrained(root / "base")
        gen = torch.Generator().manual_seed(i)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.02)
        model.save_pretrained(root / name)
        build_char_tokenizer().save_pretrained(root / name)
    return root


def load(path) -> LlamaForCausalLM:
    return AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager", dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def models(pool):
    return load(pool / "base"), [(load(pool / e), 1.0) for e in EXPERTS]


def test_a_seed_gives_the_same_bits_and_another_seed_others(models):
    base, experts = models
    first = fda_merge(base, experts, SMALL)
    again = fda_merge(base, experts, SMALL)
    other = fda_merge(base, experts, FDASettings(**{**vars(SMALL), "seed": 1}))
    assert first.keys() == base.state_dict().keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    changed = [k for k in first if not torch.equal(first[k], other[k])]
    assert "lm_head.weight" in changed and "model.layers.0.self_attn.q_proj.weight" in changed
    assert "model.embed_tokens.weight" not in changed  # no anchors there: the mean of the task vectors


@pytest.mark.parametrize("init", ["weight_rows", "gaussian"])
def test_anchor_steps_align_the_gradient_at_the_base_with_the_task_vector(models, init):
    base, experts = models
    base_state, expert_state = base.state_dict(), experts[0][0].state_dict()
    gen = torch.Generator().manual_seed(0)
    for part in model_parts(base, tokens=4):
        theta0, theta1 = part.params(base_state), part.params(expert_state)
        start = initial_anchors(part, theta1, 8, 4, init, gen)
        anchors, losses = construct_anchors(part, theta0, theta1, start, steps=30, lr=1e-2)
        before = gradient_mismatch(part, theta0, theta1, start).item()
        after = gradient_mismatch(part, theta0, theta1, anchors).item()
        assert losses[0] == pytest.approx(before, abs=1e-6)
        assert after < before - 0.05, part.name  # 1 - mean cosine, down by 0.05 at least


def test_initial_anchors_are_weight_rows_or_small_gaussians(models):
    base, experts = models
    part = model_parts(base, tokens=4)[0]
    theta = part.params(experts[0][0].state_dict())
    rows = initial_anchors(part, theta, 8, 4, "weight_rows", torch.Generator().manual_seed(0))
    pool_rows = torch.cat([t for t in theta.values() if t.dim() == 2 and t.shape[1] == part.inputs])
    assert rows.shape == (8, 4, 32)
    assert all(any(torch.equal(r, p) for p in pool_rows) for r in rows.reshape(-1, 32))
    assert len({tuple(r.tolist()) for r in rows.reshape(-1, 32)}) == 32  # without replacement
    noise = initial_anchors(part, theta, 64, 4, "gaussian", torch.Generator().manual_seed(0))
    assert noise.std().item() == pytest.approx(GAUSSIAN_SIGMA, rel=0.05)


def test_the_fitted_parts_are_closer_to_the_experts_on_their_anchors_than_the_base(models):
    base, experts = models
    base_state = base.state_dict()
    gen = torch.Generator().manual_seed(0)
    for part in model_parts(base, tokens=4):
        theta0, targets = part.params(base_state), []
        for expert, _ in experts:
            theta = part.params(expert.state_dict())
            anchors, _ = construct_anchors(part, theta0, theta, initial_anchors(part, theta, 8, 4, "weight_rows", gen),
                                           steps=10, lr=1e-2)
            with torch.no_grad():
                targets.append(Targets(anchors, part(theta, anchors), 1.0))
        fitted = fit_part(part, theta0, targets, steps=20, lr=1e-3)
        with torch.no_grad():
            assert fit_loss(part, fitted, targets) < 0.8 * fit_loss(part, theta0, targets), part.name


def test_a_zero_weight_expert_is_left_out(models):
    base, (e1, e2) = models
    alone = fda_merge(base, [e1], SMALL)
    ignored = fda_merge(base, [e1, (e2[0], 0.0)], SMALL)
    both = fda_merge(base, [e1, e2], SMALL)
    assert all(torch.equal(alone[k], ignored[k]) for k in alone)
    assert not torch.equal(both["lm_head.weight"], alone["lm_head.weight"])


def recipe_data(root, **params) -> dict:
    return {"models": [{"model": str(root / e)} for e in EXPERTS], "merge_method": "fda",
            "base_model": str(root / "base"), "parameters": params}


def test_bad_parameters_are_named_together_in_one_line(pool):
    data = recipe_data(pool, anchors=0, tokens=2.5, anchor_lr=0, fit_lr=-1.0, fit_steps=-3, init="uniform",
                       seed=float("nan"))
    with pytest.raises(ConfigError) as err:
        MergeRecipe.model_validate(data)
    message = str(err.value)
    assert "\n" not in message and "7 problems" in message
    for part in ("parameters.anchors: fda needs a whole number >= 1, got 0", "parameters.tokens: fda needs a whole",
                 "parameters.anchor_lr: fda needs a positive number, got 0", "parameters.fit_lr: fda needs a positive",
                 "parameters.fit_steps: fda needs a whole number >= 0", "parameters.seed",
                 "parameters.init: 'uniform' is not one of weight_rows, gaussian"):
        assert part in message
    with pytest.raises(ConfigError, match="merge_method fda needs a base_model"):
        MergeRecipe.model_validate({**recipe_data(pool), "base_model": None})


def test_negative_weights_are_refused_at_merge(pool, tmp_path):
    data = recipe_data(pool)
    data["models"][0]["parameters"] = {"weight": -1.0}
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(SystemExit) as exit_:
        main(["merge", str(config), str(tmp_path / "out"), "-q"])
    assert exit_.value.code == 2 and not (tmp_path / "out").exists()


def test_the_per_tensor_paths_refuse_it_in_one_line(pool, tmp_path):
    recipe = MergeRecipe.model_validate(recipe_data(pool))
    tensor = torch.zeros(3)
    with pytest.raises(MergeError, match="fda merges whole models .*`soup-search merge RECIPE.yaml OUT`") as err:
        merge_tensor(recipe, "model.norm.weight", {str(pool / e): tensor for e in EXPERTS}, tensor)
    assert "\n" not in str(err.value)
    candidates = load_candidates([pool / "base", *(pool / e for e in EXPERTS)], names=["base", *EXPERTS])
    shard = Shard([(c.name, c.path) for c in candidates.members], ["model.norm.weight"])
    with pytest.raises(MergeError, match="fda merges whole models"):
        shard.merge(MergeRecipe.soup({"e1": 1.0, "e2": 1.0}, method="fda", base_model="base"))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"candidates": {"zoo": "tiny", "include_base": True},
                                      "search": {"method": "fda", "base_model": "base"}}))
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert "'search.method' fda merges whole models" in str(err.value)
    assert "soup-search merge RECIPE.yaml OUT" in str(err.value) and "\n" not in str(err.value)


def test_soup_search_merge_writes_the_fda_merge(pool, models, tmp_path):
    params = {k: v for k, v in vars(SMALL).items()}
    config = tmp_path / "recipe.yaml"
    config.write_text(yaml.safe_dump({**recipe_data(pool, **params), "out_dtype": "bfloat16"}))
    out = tmp_path / "out"
    cli("merge", str(config), str(out), "-q")
    merged = load_file(out / "model.safetensors")
    want = fda_merge(*models, SMALL)
    assert merged.keys() == want.keys()
    assert all(merged[k].dtype == torch.bfloat16 and torch.equal(merged[k], want[k].bfloat16()) for k in want)
    assert "merge_method: fda" in (out / "README.md").read_text()
    assert load(out).config.hidden_size == 32  # loads as a transformers model
    text = MergeRecipe.from_yaml(config).to_yaml()
    assert text.startswith("# mergekit has no 'fda' merge method")
