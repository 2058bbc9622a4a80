"""The zoo on disk: real HF checkpoints, a manifest, the cache, --out and bad sizes."""

from __future__ import annotations

import json
import time

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from soup_search.errors import SoupSearchError
from soup_search.zoo import SIZES, Zoo, ZooError, build_zoo, fingerprint, get_spec

pytestmark = pytest.mark.slow


def test_every_checkpoint_loads_offline_as_float32(tiny_zoo, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models = tiny_zoo.models()
    assert list(models)[0] == "base" and len(tiny_zoo.experts) >= 6
    assert all(name.startswith("expert_") for name in tiny_zoo.experts)
    for path in models.values():
        for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json"):
            assert (path / name).is_file(), f"{path / name} missing"
        model = AutoModelForCausalLM.from_pretrained(path)
        tok = AutoTokenizer.from_pretrained(path)
        assert type(model).__name__ == "LlamaForCausalLM"
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
        assert tok.padding_side == "left"
        assert model.generation_config.eos_token_id == 2


def test_experts_are_finetuned_from_one_base(tiny_zoo):
    """Same architecture, and each expert stays close to the base (the soup regime)."""
    base = AutoModelForCausalLM.from_pretrained(tiny_zoo.base).state_dict()
    for path in tiny_zoo.experts.values():
        expert = AutoModelForCausalLM.from_pretrained(path).state_dict()
        assert expert.keys() == base.keys()
        moved = sum((expert[k] - base[k]).norm() ** 2 for k in base) ** 0.5
        size = sum(base[k].norm() ** 2 for k in base) ** 0.5
        assert 0 < moved < 0.5 * size


def test_manifest_lists_models_roles_and_build_time(tiny_zoo):
    manifest = json.loads((tiny_zoo.root / "manifest.json").read_text())
    assert manifest["size"] == "tiny" and manifest["seed"] == 0
    assert manifest["build_seconds"] > 0 and manifest["build_cpu_seconds"] > 0
    roles = {m["name"]: m["role"] for m in manifest["models"]}
    assert roles == {"base": "base", **{name: "expert" for name in tiny_zoo.experts}}
    spec = SIZES["tiny"]
    assert manifest["fingerprint"] == fingerprint(spec, 0)
    assert tiny_zoo.root.name == f"tiny-{fingerprint(spec, 0)}"


def test_second_build_returns_the_cached_zoo_at_once(tiny_zoo):
    before = (tiny_zoo.base / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    again = build_zoo(size="tiny", progress=False)
    assert time.perf_counter() - start < 2.0
    assert again == tiny_zoo
    assert (again.base / "model.safetensors").stat().st_mtime_ns == before  # not retrained
    assert Zoo.load(tiny_zoo.root) == tiny_zoo


def test_out_copies_the_cached_zoo(tiny_zoo, tmp_path):
    start = time.perf_counter()
    zoo = build_zoo(size="tiny", out=tmp_path / "myzoo", progress=False)
    assert time.perf_counter() - start < 5.0
    assert zoo.root == tmp_path / "myzoo" and list(zoo.experts) == list(tiny_zoo.experts)
    assert (zoo.base / "model.safetensors").read_bytes() == (tiny_zoo.base / "model.safetensors").read_bytes()
    assert not list(tmp_path.glob(".myzoo.tmp-*"))  # the temp dir is gone


def test_out_refuses_a_dir_that_is_not_a_zoo(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ZooError, match="not a zoo"):
        build_zoo(size="tiny", out=tmp_path, progress=False)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_unknown_size_is_a_one_line_user_error():
    with pytest.raises(SoupSearchError) as info:
        build_zoo(size="huge", progress=False)
    assert isinstance(info.value, ZooError)
    assert "huge" in str(info.value) and "tiny" in str(info.value) and "\n" not in str(info.value)


def test_small_is_an_alias_and_fingerprints_differ_by_seed_and_size():
    assert get_spec("small") == get_spec("default")
    assert fingerprint(SIZES["tiny"], 0) != fingerprint(SIZES["tiny"], 1)
    assert fingerprint(SIZES["tiny"], 0) != fingerprint(SIZES["default"], 0)


def test_conflicting_candidates_are_built_listed_and_offered_as_candidates(tmp_path, monkeypatch):
    """A micro zoo (a few steps each) with one conflicting candidate: role, order, candidates()."""
    import dataclasses

    micro = dataclasses.replace(SIZES["tiny"], base_steps=4, expert_steps=2, n_train=40,
                                experts={"add": ("add",)}, conflicting={"sort": ("sort",)})
    monkeypatch.setitem(SIZES, "tiny", micro)
    zoo = build_zoo(size="tiny", out=tmp_path / "micro", progress=False)
    assert list(zoo.models()) == ["base", "expert_add", "conflict_sort"]
    assert list(zoo.candidates()) == ["expert_add", "conflict_sort"] and list(zoo.conflicting) == ["conflict_sort"]
    assert micro.candidate_names() == list(zoo.candidates())  # what configs and curves check names against
    roles = {m["name"]: m["role"] for m in zoo.manifest["models"]}
    assert roles == {"base": "base", "expert_add": "expert", "conflict_sort": "conflicting"}
    base = AutoModelForCausalLM.from_pretrained(zoo.base).state_dict()
    moved = AutoModelForCausalLM.from_pretrained(zoo.conflicting["conflict_sort"]).state_dict()
    assert any(not torch.equal(base[k], moved[k]) for k in base)
