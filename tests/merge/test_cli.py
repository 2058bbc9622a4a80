"""``soup-search merge`` and ``export``: success paths, and every bad input -> exit 2, one line, no output."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from soup_search.cli import main
from soup_search.merge import MergeRecipe

LINEAR = """
models:
  - {model: m0, parameters: {weight: 0.6}}
  - {model: m1, parameters: {weight: 0.4}}
merge_method: linear
"""


def run(argv) -> int:
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code or 0
    return 0


def write_yaml(tmp_path, text, candidates_dir, name="recipe.yaml"):
    """A recipe whose model paths are absolute paths into the candidates (so the YAML may live anywhere)."""
    data = yaml.safe_load(text)
    for m in data["models"]:
        if not m["model"].startswith("/"):
            m["model"] = str(candidates_dir / m["model"])
    if data.get("base_model") and not data["base_model"].startswith("/"):
        data["base_model"] = str(candidates_dir / data["base_model"])
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_merge_command_writes_checkpoint(candidates_dir, state_dicts, tmp_path, capsys):
    (tmp_path / "cfg").mkdir()
    shutil.copytree(candidates_dir / "m0", tmp_path / "cfg" / "m0")
    shutil.copytree(candidates_dir / "m1", tmp_path / "cfg" / "m1")
    config = tmp_path / "cfg" / "recipe.yaml"
    config.write_text(LINEAR)  # relative paths: resolved against the YAML's folder
    out = tmp_path / "out"
    assert run(["merge", config, out, "--max-shard-size", "40KB", "-q"]) == 0
    assert "merged 2 models" in capsys.readouterr().out
    assert (out / "model.safetensors.index.json").is_file()
    from soup_search.io.checkpoint import CheckpointReader

    reader = CheckpointReader(out)
    name = "model.layers.0.self_attn.v_proj.weight"
    want = 0.6 * state_dicts["m0"][name] + 0.4 * state_dicts["m1"][name]
    assert torch.allclose(reader.get(name), want, atol=1e-6)


def test_allow_negative_lets_negative_linear_weights_through(candidates_dir, tmp_path):
    config = write_yaml(tmp_path, LINEAR.replace("0.4", "-0.4"), candidates_dir)
    assert run(["merge", config, tmp_path / "neg", "-q"]) == 2
    assert not (tmp_path / "neg").exists()
    assert run(["merge", config, tmp_path / "neg", "-q", "--allow-negative"]) == 0
    assert (tmp_path / "neg" / "model.safetensors").is_file()


def test_allow_nonfinite(nan_candidates, tmp_path):
    config = write_yaml(tmp_path, LINEAR, nan_candidates)
    assert run(["merge", config, tmp_path / "out", "-q", "--allow-nonfinite"]) == 0
    merged = load_file(tmp_path / "out" / "model.safetensors")
    assert torch.isnan(merged["model.layers.0.mlp.up_proj.weight"]).any()


@pytest.fixture(scope="module")
def nan_candidates(candidates_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("nan-candidates")
    shutil.copytree(candidates_dir / "m0", root / "m0")
    shutil.copytree(candidates_dir / "m1", root / "m1")
    tensors = load_file(root / "m1" / "model.safetensors")
    tensors["model.layers.0.mlp.up_proj.weight"][3, 5] = float("nan")
    tensors["model.layers.1.mlp.up_proj.weight"][0, 0] = float("inf")
    save_file(tensors, root / "m1" / "model.safetensors", metadata={"format": "pt"})
    return root


@pytest.fixture(scope="module")
def broken_candidates(candidates_dir, tmp_path_factory):
    """m0 fine; 'arch' another architecture; 'wide' other shapes; 'corrupt' and 'truncated' files."""
    from tests.helpers import make_checkpoint

    root = tmp_path_factory.mktemp("broken-candidates")
    shutil.copytree(candidates_dir / "m0", root / "m0")
    shutil.copytree(candidates_dir / "m1", root / "m1")
    shutil.copytree(candidates_dir / "m1", root / "arch")
    cfg = json.loads((root / "arch" / "config.json").read_text())
    cfg.update(architectures=["MistralForCausalLM"], model_type="mistral")
    (root / "arch" / "config.json").write_text(json.dumps(cfg))
    make_checkpoint(root / "wide", seed=5, intermediate_size=48)
    shutil.copytree(candidates_dir / "m1", root / "corrupt")
    data = (root / "corrupt" / "model.safetensors").read_bytes()
    (root / "corrupt" / "model.safetensors").write_bytes(data[:8] + b"{not json" + data[17:])
    shutil.copytree(candidates_dir / "m1", root / "truncated")
    (root / "truncated" / "model.safetensors").write_bytes(data[: len(data) - 1000])
    return root


BAD = {
    "architecture": (LINEAR.replace("m1", "arch"), "broken", "architecture"),
    "shapes": (LINEAR.replace("m1", "wide"), "broken", "intermediate_size"),
    "nan": (LINEAR, "nan", "NaN or Inf"),
    "zero_sum": (LINEAR.replace("0.6", "0.4").replace("0.4}}\nmerge", "-0.4}}\nmerge"), "candidates", "sum to zero"),
    "negative": (LINEAR.replace("0.4", "-0.4"), "candidates", "--allow-negative"),
    "unknown_method": (LINEAR.replace("linear", "frankenmerge"), "candidates", "frankenmerge"),
    "unknown_param": (LINEAR.replace("weight: 0.6", "weight: 0.6, densty: 0.5"), "candidates", "densty"),
    "missing_base": (LINEAR.replace("linear", "ties"), "candidates", "needs a base_model"),
    "corrupt": (LINEAR.replace("m1", "corrupt"), "broken", "corrupt"),
    "truncated": (LINEAR.replace("m1", "truncated"), "broken", "truncated"),
    "missing_model": (LINEAR.replace("m1", "nope"), "candidates", "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_line_and_no_output(case, candidates_dir, broken_candidates, nan_candidates, tmp_path, capsys):
    text, which, needle = BAD[case]
    root = {"candidates": candidates_dir, "broken": broken_candidates, "nan": nan_candidates}[which]
    config = write_yaml(tmp_path, text, root)
    out = tmp_path / "out"
    capsys.readouterr()
    assert run(["merge", config, out, "-q"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and needle in err, err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml"]  # no temp dirs left


def test_bad_shard_size(candidates_dir, tmp_path, capsys):
    config = write_yaml(tmp_path, LINEAR, candidates_dir)
    assert run(["merge", config, tmp_path / "out", "--max-shard-size", "lots"]) == 2
    assert "max-shard-size" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_parse_size():
    from soup_search.cli.merge import parse_size

    assert parse_size("5GB") == 5 * 10**9
    assert parse_size("2GiB") == 2 * 2**30
    assert parse_size("20KB") == 20_000
    assert parse_size("1234") == 1234


def test_export_weights(tmp_path, capsys):
    out = tmp_path / "soup.yaml"
    assert run(["export", "--weights", "m0=0.5,/abs/m1=0.3,m2=0.2", "--out", out]) == 0
    recipe = MergeRecipe.from_yaml(out)
    assert recipe == MergeRecipe.soup({"m0": 0.5, "/abs/m1": 0.3, "m2": 0.2})
    assert recipe.fingerprint() in capsys.readouterr().out


def test_export_ties_with_base_and_params(tmp_path):
    out = tmp_path / "ties.yaml"
    assert run(["export", "--weights", "a=1,b=2", "--method", "ties", "--base", "z",
                "--param", "density=0.4", "--param", "lambda=0.9", "--out", out]) == 0
    recipe = MergeRecipe.from_yaml(out)
    assert recipe.base_model == "z" and recipe.parameters == {"density": 0.4, "lambda": 0.9}


def test_export_results_json(tmp_path):
    best = MergeRecipe.soup({"m0": 0.7, "m2": 0.3})
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"best": {"recipe": best.model_dump(), "score": 0.9}}))
    out = tmp_path / "soup.yaml"
    assert run(["export", results, "--out", out]) == 0
    assert MergeRecipe.from_yaml(out) == best


@pytest.mark.parametrize("argv, needle", [
    (["export", "--weights", "m0=abc,m1", "--out", "{tmp}/x.yaml"], "NAME=NUMBER"),
    (["export", "--out", "{tmp}/x.yaml"], "exactly one"),
    (["export", "{tmp}/results.json", "--out", "{tmp}/x.yaml"], "best.recipe"),
    (["export", "--weights", "a=1,b=2", "--method", "ties", "--out", "{tmp}/x.yaml"], "needs a base_model"),
])
def test_export_bad_input(argv, needle, tmp_path, capsys):
    (tmp_path / "results.json").write_text(json.dumps({"trials": []}))
    assert run([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.yaml").exists()
