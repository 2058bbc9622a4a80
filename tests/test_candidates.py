"""load_candidates / resolve_candidate: every compatibility check, each with its one-line error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

from soup_search.candidates import Candidate, CandidateSet, _vocab, load_candidates, resolve_candidate
from soup_search.io.checkpoint import CheckpointReader
from soup_search.io.safetensors_format import SINGLE_FILE
from soup_search.errors import CandidateError
from soup_search.zoo.tokenizer import build_char_tokenizer
from tests.helpers import make_checkpoint, make_candidates, read_config

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


@pytest.fixture(scope="module")
def pool_dirs(tmp_path_factory):
    return make_candidates(tmp_path_factory.mktemp("candidates"), n=3)


def pool_error(specs, *parts, names=None) -> str:
    with pytest.raises(CandidateError) as excinfo:
        load_candidates(specs, names=names)
    msg = str(excinfo.value)
    assert "\n" not in msg
    for part in parts:
        assert part in msg, msg
    return msg


def with_config_of(path, reference):
    """Give ``path`` the config.json of ``reference`` (to reach the checks after the config one)."""
    shutil.copyfile(reference / "config.json", path / "config.json")
    return path


# -- a good candidates ------------------------------------------------------------------------------
def test_load_pool(pool_dirs):
    candidates = load_candidates(pool_dirs)
    assert isinstance(candidates, CandidateSet) and len(candidates) == 3
    assert candidates.names == ("m0", "m1", "m2")
    assert candidates.paths == tuple(p.resolve() for p in pool_dirs)
    assert candidates.config == read_config(pool_dirs[0])
    assert candidates.tensor_infos == CheckpointReader(pool_dirs[0]).infos()
    assert candidates.tokenizer_dir == pool_dirs[0].resolve()
    with candidates.reader("m2") as reader:
        assert reader.path == pool_dirs[2].resolve()
        assert not torch.equal(reader.get("lm_head.weight"), CheckpointReader(pool_dirs[0]).get("lm_head.weight"))
    with pytest.raises(KeyError, match="no candidate named 'zz'"):
        candidates.reader("zz")


def test_pool_mixes_single_sharded_and_dtypes(pool_dirs, tmp_path):
    sharded = make_checkpoint(tmp_path / "sharded", seed=5, max_shard_size="20KB")
    bf16 = make_checkpoint(tmp_path / "bf16", seed=6, dtype=torch.bfloat16)
    candidates = load_candidates([pool_dirs[0], sharded, bf16])
    assert candidates.names == ("m0", "sharded", "bf16")
    assert {i.dtype for i in candidates.tensor_infos.values()} == {"F32"}
    assert {i.dtype for i in candidates.reader("bf16").infos().values()} == {"BF16"}
    assert len(candidates.reader("sharded").files) > 1


def test_names_and_candidate_specs(pool_dirs):
    candidates = load_candidates([str(pool_dirs[0]), Candidate("second", pool_dirs[1])], names=["a", None])
    assert candidates.names == ("a", "second")
    assert load_candidates([resolve_candidate(str(pool_dirs[2]), name="x")]).names == ("x",)


def test_ignored_config_keys_and_nulls_do_not_matter(pool_dirs, tmp_path):
    other = shutil.copytree(pool_dirs[1], tmp_path / "other")
    cfg = read_config(other)
    cfg.update(transformers_version="4.0.0", use_cache=False, _name_or_path="/x", dtype="bfloat16",
               pad_token_id=None, initializer_range=0.5, some_unset_field=None)
    (other / "config.json").write_text(json.dumps(cfg))
    assert load_candidates([pool_dirs[0], other]).names == ("m0", "other")


def test_candidates_without_tokenizer_files_use_the_pools(pool_dirs, tmp_path):
    bare = shutil.copytree(pool_dirs[1], tmp_path / "bare")
    for fname in TOKENIZER_FILES:
        (bare / fname).unlink()
    assert load_candidates([pool_dirs[0], bare]).tokenizer_dir == pool_dirs[0].resolve()
    assert load_candidates([bare, pool_dirs[2]]).tokenizer_dir == pool_dirs[2].resolve()
    assert load_candidates([bare]).tokenizer_dir is None


def test_vocab_from_tokenizer_json_matches_auto_tokenizer(pool_dirs):
    assert _vocab(pool_dirs[0], "json") == _vocab(pool_dirs[0], "auto")
    assert len(_vocab(pool_dirs[0], "json")) == len(build_char_tokenizer())


# -- every validation error -------------------------------------------------------------------
def test_missing_path(tmp_path):
    pool_error([tmp_path / "nowhere"], "candidate path", "nowhere", "does not exist")


def test_a_file_is_not_a_candidate(pool_dirs):
    pool_error([pool_dirs[0] / SINGLE_FILE], "is a file, not a model directory")


def test_hub_id_with_the_hub_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msg = pool_error(["some-org/some-model"], "'some-org/some-model'", "is not a local directory",
                     "hub is not reachable", "download it first and pass its path")
    assert msg == ("candidate 'some-org/some-model' is not a local directory and the Hugging Face hub "
                   "is not reachable; download it first and pass its path")


def test_hub_id_with_an_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    # a closed local port: no traffic leaves the machine
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(CandidateError, match="hub is not reachable"):
        resolve_candidate("some-org/some-model")
    assert time.monotonic() - start < 30


def test_no_candidates():
    pool_error([], "no candidates given")


def test_name_count_mismatch(pool_dirs):
    pool_error(pool_dirs[:2], "1 names given for 2 candidates", names=["a"])


def test_duplicate_names(pool_dirs, tmp_path):
    a = shutil.copytree(pool_dirs[0], tmp_path / "run1" / "final")
    b = shutil.copytree(pool_dirs[1], tmp_path / "run2" / "final")
    pool_error([a, b], "two candidates are named 'final'", "give them distinct names")
    pool_error(pool_dirs[:2], "two candidates are named 'x'", names=["x", "x"])
    assert load_candidates([a, b], names=["r1", "r2"]).names == ("r1", "r2")


def test_missing_config(pool_dirs, tmp_path):
    bare = shutil.copytree(pool_dirs[1], tmp_path / "bare")
    (bare / "config.json").unlink()
    pool_error([pool_dirs[0], bare], "candidate 'bare'", "has no config.json")


def test_unreadable_candidate_checkpoint(pool_dirs, tmp_path):
    broken = shutil.copytree(pool_dirs[1], tmp_path / "broken")
    (broken / SINGLE_FILE).write_bytes(b"\x00" * 4)
    pool_error([pool_dirs[0], broken], str(broken / SINGLE_FILE), "truncated")


def test_different_architecture(pool_dirs, tmp_path):
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, vocab_size=58))
    gpt2.save_pretrained(tmp_path / "gpt2")
    build_char_tokenizer().save_pretrained(tmp_path / "gpt2")
    msg = pool_error([pool_dirs[0], tmp_path / "gpt2"], "candidates 'm0' and 'gpt2' differ: architecture",
                     "LlamaForCausalLM (llama) vs GPT2LMHeadModel (gpt2)")
    assert msg.endswith("soups need identical architectures")


def test_different_config_field(pool_dirs, tmp_path):
    deeper = make_checkpoint(tmp_path / "deeper", num_hidden_layers=3)
    pool_error([pool_dirs[0], deeper], "candidates 'm0' and 'deeper' differ: config field 'num_hidden_layers' is 2 vs 3")
    rope = make_checkpoint(tmp_path / "rope", rope_theta=500000.0)
    pool_error([pool_dirs[0], pool_dirs[1], rope],
               "candidates 'm0' and 'rope' differ: config field 'rope_parameters.rope_theta' is 10000.0 vs 500000.0")
    wider = make_checkpoint(tmp_path / "wider", intermediate_size=128)
    pool_error([pool_dirs[0], wider], "config field 'intermediate_size' is 64 vs 128")


def test_different_hidden_size_names_the_field_the_user_set(pool_dirs, tmp_path):
    wide = make_checkpoint(tmp_path / "wide", hidden_size=64)
    assert read_config(wide)["head_dim"] != read_config(pool_dirs[0])["head_dim"]  # derived, differs too
    msg = pool_error([pool_dirs[0], wide], "config field 'hidden_size' is 32 vs 64")
    assert "head_dim" not in msg


def test_config_field_missing_in_one(pool_dirs, tmp_path):
    other = shutil.copytree(pool_dirs[1], tmp_path / "other")
    cfg = read_config(other)
    cfg["sliding_window"] = 16
    (other / "config.json").write_text(json.dumps(cfg))
    pool_error([pool_dirs[0], other], "config field 'sliding_window' is set in 'other' but not in 'm0'")


def test_different_tensor_shape(pool_dirs, tmp_path):
    wider = with_config_of(make_checkpoint(tmp_path / "m2", intermediate_size=128), pool_dirs[0])
    msg = pool_error([pool_dirs[0], wider], names=["m0", "m2"])
    assert msg == ("candidates 'm0' and 'm2' differ: tensor 'model.layers.0.mlp.down_proj.weight' has shape "
                   "(32, 64) vs (32, 128); soups need identical architectures")


def test_different_tensor_names(pool_dirs, tmp_path):
    renamed = shutil.copytree(pool_dirs[1], tmp_path / "renamed")
    tensors = load_file(renamed / SINGLE_FILE)
    tensors["model.layers.0.mlp.up_proj.weight_renamed"] = tensors.pop("model.layers.0.mlp.up_proj.weight")
    save_file(tensors, renamed / SINGLE_FILE, metadata={"format": "pt"})
    pool_error([pool_dirs[0], renamed],
               "candidates 'm0' and 'renamed' differ: tensor 'model.layers.0.mlp.up_proj.weight' "
               "is in 'm0' but not in 'renamed'")
    pool_error([renamed, pool_dirs[0]],
               "tensor 'model.layers.0.mlp.up_proj.weight' is in 'm0' but not in 'renamed'")


def test_different_vocabulary(pool_dirs, tmp_path):
    extra = shutil.copytree(pool_dirs[1], tmp_path / "extra")
    tok = build_char_tokenizer()
    tok.add_tokens(["<extra>"])
    tok.save_pretrained(extra)
    msg = pool_error([pool_dirs[0], extra],
                     "candidates 'm0' and 'extra' differ: vocabulary token '<extra>' (id 58) is in 'extra' but not in 'm0'")
    assert msg.endswith("soups need the same tokenizer")
    # a candidate without tokenizer files is not compared, the first one that has them is
    bare = shutil.copytree(pool_dirs[2], tmp_path / "bare")
    for fname in TOKENIZER_FILES:
        (bare / fname).unlink()
    pool_error([bare, extra, pool_dirs[0]], "candidates 'extra' and 'm0' differ: vocabulary token '<extra>'")


def test_swapped_token_ids(pool_dirs, tmp_path):
    swapped = shutil.copytree(pool_dirs[1], tmp_path / "swapped")
    data = json.loads((swapped / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    vocab["a"], vocab["b"] = vocab["b"], vocab["a"]
    (swapped / "tokenizer.json").write_text(json.dumps(data))
    pool_error([pool_dirs[0], swapped], f"vocabulary token 'a' has id {vocab['b']} vs {vocab['a']}")


def test_error_becomes_exit_2_without_traceback(tmp_path):
    # no command loads a candidates yet: register a throwaway one on the real app and run main()
    script = textwrap.dedent(f"""
        from soup_search.cli import app, main
        from soup_search.candidates import load_candidates

        @app.command("candidates-check")
        def pool_check():
            load_candidates([{str(tmp_path / "nowhere")!r}])

        main(["candidates-check"])
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "does not exist" in proc.stderr and "nowhere" in proc.stderr
