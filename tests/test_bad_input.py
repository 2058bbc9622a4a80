"""Bad input, tried as a new user would: each case is one line on stderr and exit 2, never a
traceback, never a hang, and nothing the user had is destroyed or left half-written."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from soup_search.cli import main
from tests.helpers import make_candidates

LINEAR = "models:\n  - {model: m0, parameters: {weight: 0.5}}\n  - {model: m1, parameters: {weight: 0.5}}\n" \
         "merge_method: linear\n"
SCORES = "Model,add,sub,mul\na,0.9,0.2,0.5\nb,0.3,0.8,0.4\nc,0.5,0.5,0.9\nd,0.1,0.6,0.2\n"


def run(argv, capsys) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``soup-search ARGV`` run in this process."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def refused(argv, capsys, *parts) -> str:
    """Run ARGV, check exit 2 and one line on stderr holding every part; return that line."""
    code, _, err = run(argv, capsys)
    assert code == 2, err
    assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    return err


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """A linear recipe over two tiny checkpoints next to it."""
    root = tmp_path_factory.mktemp("bad-input")
    make_candidates(root, n=2)
    (root / "recipe.yaml").write_text(LINEAR)
    return root / "recipe.yaml"


@pytest.fixture
def scores(tmp_path) -> Path:
    path = tmp_path / "scores.csv"
    path.write_text(SCORES)
    return path


# -- data loss: nothing soup-search did not write is replaced ---------------------------------------
def test_merge_refuses_an_existing_file(recipe, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("my notes")
    refused(["merge", recipe, out, "-q"], capsys, "exists and is not a folder")
    refused(["merge", recipe, out, "-q", "--force"], capsys, "exists and is not a folder")
    assert out.read_text() == "my notes" and files(tmp_path) == ["out"]


def test_merge_refuses_a_folder_of_user_files_even_with_force(recipe, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    for extra in ([], ["--force"]):
        refused(["merge", recipe, out, "-q", *extra], capsys, str(out), "did not write", "never replaced")
    assert files(out) == ["thesis.tex"] and files(tmp_path) == ["out"]


def test_merge_replaces_its_own_output_only_with_force(recipe, tmp_path, capsys):
    from soup_search.io.atomic import MARKER

    out = tmp_path / "out"
    assert run(["merge", recipe, out, "-q"], capsys)[0] == 0
    assert MARKER in files(out)
    first = (out / "model.safetensors").stat().st_ino
    refused(["merge", recipe, out, "-q"], capsys, "pass --force")
    assert (out / "model.safetensors").stat().st_ino == first
    assert run(["merge", recipe, out, "-q", "--force"], capsys)[0] == 0
    assert (out / "model.safetensors").stat().st_ino != first
    assert [p for p in files(tmp_path) if p.startswith(".")] == []


def test_merge_into_an_empty_folder(recipe, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert run(["merge", recipe, out, "-q"], capsys)[0] == 0
    assert (out / "config.json").is_file()


def test_analyze_refuses_a_folder_of_user_files(scores, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    for extra in ([], ["--force"]):
        refused(["analyze", "--scores", scores, "--out", out, *extra], capsys, "did not write")
    assert files(out) == ["keep.txt"]
    again = tmp_path / "analysis"
    assert run(["analyze", "--scores", scores, "--out", again], capsys)[0] == 0
    refused(["analyze", "--scores", scores, "--out", again], capsys, "pass --force")
    assert run(["analyze", "--scores", scores, "--out", again, "--force"], capsys)[0] == 0
    assert (again / "analysis.json").is_file()


def test_analyze_out_current_folder(scores, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    refused(["analyze", "--scores", scores, "--out", "."], capsys, "current folder")
    assert files(tmp_path) == ["scores.csv"]


def test_export_refuses_a_folder_and_an_existing_file(tmp_path, capsys):
    weights = ["--weights", "a=0.5,b=0.5"]
    refused(["export", *weights, "--out", tmp_path], capsys, "is a folder", "soup.yaml")
    out = tmp_path / "soup.yaml"
    out.write_text("mine")
    refused(["export", *weights, "--out", out], capsys, "exists", "--force")
    assert out.read_text() == "mine"
    assert run(["export", *weights, "--out", out, "--force"], capsys)[0] == 0
    assert "merge_method: linear" in out.read_text()


# -- unwritable outputs -----------------------------------------------------------------------------
def test_unwritable_out_merge_analyze_export(recipe, scores, capsys):
    refused(["merge", recipe, "/proc/soup", "-q"], capsys, "/proc/soup", "writable")
    refused(["analyze", "--scores", scores, "--out", "/proc/soup"], capsys, "/proc/soup", "writable")
    refused(["export", "--weights", "a=1", "--out", "/proc/soup/x.yaml"], capsys, "/proc/soup", "writable")


# -- permissions follow the umask -------------------------------------------------------------------
@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_outputs_follow_the_umask(recipe, scores, tmp_path, capsys, mask, file_mode, dir_mode):
    old = os.umask(mask)
    try:
        assert run(["merge", recipe, tmp_path / "merged", "-q"], capsys)[0] == 0
        assert run(["analyze", "--scores", scores, "--out", tmp_path / "analysis"], capsys)[0] == 0
        assert run(["export", "--weights", "a=1", "--out", tmp_path / "soup.yaml"], capsys)[0] == 0
    finally:
        os.umask(old)
    for path in (tmp_path / "merged", tmp_path / "analysis"):
        assert stat.S_IMODE(path.stat().st_mode) == dir_mode, path
    for path in (tmp_path / "merged" / "model.safetensors", tmp_path / "analysis" / "analysis.json",
                 tmp_path / "soup.yaml"):
        assert stat.S_IMODE(path.stat().st_mode) == file_mode, path


# -- merge --device -------------------------------------------------------------------------------
def absent_devices() -> list[str]:
    import torch

    return ["cuda:99", "banana"] + ([] if torch.cuda.is_available() else ["cuda"])


@pytest.mark.parametrize("device", absent_devices())
def test_merge_on_a_device_this_machine_lacks(recipe, tmp_path, capsys, device):
    refused(["merge", recipe, tmp_path / "out", "-q", "--device", device], capsys, "--device", repr(device))
    assert files(tmp_path) == []


# -- analyze: score tables -------------------------------------------------------------------------
def test_analyze_a_table_with_a_header_and_no_rows(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("Model,add,sub\n")
    refused(["analyze", "--scores", empty, "--out", tmp_path / "out"], capsys, str(empty), "no rows")
    assert files(tmp_path) == ["empty.csv"]


def test_analyze_names_a_category_left_out_for_a_non_numeric_cell(tmp_path, capsys):
    typo = tmp_path / "typo.csv"
    typo.write_text(SCORES.replace("b,0.3,0.8,0.4", "b,0.3,0.8O,0.4"))  # a letter O in a score
    code, _, err = run(["analyze", "--scores", typo, "--out", tmp_path / "out"], capsys)
    assert code == 0, err
    assert "note:" in err and "'sub'" in err and "'b'" in err and "'0.8O'" in err, err
    assert json.loads((tmp_path / "out" / "analysis.json").read_text())["categories"] == ["add", "mul"]


def test_unknown_category_lists_the_known_categories(scores, tmp_path, capsys):
    err = refused(["analyze", "--scores", scores, "--out", tmp_path / "out", "--categories", "add,sbu"],
                  capsys, "unknown category 'sbu'", "known categories:")
    assert "categorys" not in err


# -- run / profile ---------------------------------------------------------------------------------
def tiny_config(tmp_path: Path, name: str = "tiny", **sections) -> Path:
    """A tiny-zoo config (the zoo is built only when the config is run)."""
    cfg = {"name": name, "candidates": {"zoo": "tiny"},
           "objective": {"name": "toy", "params": {"seed": 0, "n_dev": 16, "n_test": 16}},
           "search": {"sampler": "tpe", "n_trials": 2, "seed": 0},
           "resources": {"shards": 2, "scorers": 2, "shard_cpus": 0.25, "scorer_cpus": 0.5}}
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("command", ["run", "profile"])
def test_unwritable_out_run_profile(cache_dir, tmp_path, capsys, command):
    refused([command, tiny_config(tmp_path), "--out", "/proc/soup"], capsys, "/proc/soup", "writable")
    (tmp_path / "afile").write_text("")
    refused([command, tiny_config(tmp_path), "--out", tmp_path / "afile"], capsys, "afile")


def test_run_refuses_early_a_result_folder_it_did_not_write(cache_dir, tmp_path, capsys):
    (tmp_path / "out" / "best").mkdir(parents=True)
    (tmp_path / "out" / "best" / "mine.bin").write_text("mine")
    refused(["run", tiny_config(tmp_path), "--out", tmp_path / "out"], capsys, "best", "did not write")
    assert files(tmp_path / "out") == ["best"]


def test_run_on_an_address_nobody_answers_is_refused_quickly(tmp_path):
    config = tiny_config(tmp_path, resources={"address": "127.0.0.1:1"})
    env = {**os.environ, "SOUP_SEARCH_CACHE_DIR": str(tmp_path / "cache")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "soup_search", "run", str(config), "--out", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=30)
    assert time.perf_counter() - start < 30
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "127.0.0.1:1" in proc.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()  # no zoo built, nothing written


@pytest.mark.slow
def test_a_set_ray_address_does_not_hijack_the_private_local_instance(tmp_path):
    """RAY_ADDRESS (or a cluster already running) must not be joined when the config names no address:
    the engine starts a private local instance, with the CPUs it asked for."""
    code = ("from soup_search.engine.cluster import start_ray\n"
            "ray = start_ray(None, num_cpus=1)\n"
            "print(ray.get_runtime_context().gcs_address, ray.cluster_resources()['CPU'])\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "RAY_ADDRESS": "127.0.0.1:1"},
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    address, cpus = proc.stdout.split()
    assert address != "127.0.0.1:1" and float(cpus) == 1.0


@pytest.mark.slow
def test_a_run_that_fails_before_its_first_trial_does_not_block_the_corrected_one(tiny_zoo, ray_session,
                                                                                  tmp_path, capsys):
    """A score table whose every column is constant fails the analysis (after Ray started); the
    corrected config then runs in the same --out without --fresh."""
    experts = list(tiny_zoo.experts)
    flat = tmp_path / "flat.csv"
    flat.write_text("Model,add,sub,sort\n" + "".join(f"{m},0.5,0.5,0.5\n" for m in experts))
    out = tmp_path / "out"
    refused(["run", tiny_config(tmp_path, scores={"csv": "flat.csv"}), "--out", out], capsys,
            "separate the candidates")
    assert (out / "state").is_dir() and not (out / "state" / "config.json").exists()
    varied = tmp_path / "varied.csv"
    varied.write_text("Model,add,sub,sort\n" + "".join(
        f"{m},{(i * 0.37) % 1:.3f},{(i * 0.61) % 1:.3f},{(i * 0.23 + 0.1) % 1:.3f}\n" for i, m in enumerate(experts)))
    code, _, err = run(["run", tiny_config(tmp_path, scores={"csv": "varied.csv"}), "--out", out], capsys)
    assert code == 0, err
    assert (out / "results.json").is_file() and (out / "state" / "config.json").is_file()


def test_run_refuses_chat_template_true_on_a_tokenizer_without_one_before_ray(tiny_zoo, tmp_path, capsys):
    config = tiny_config(tmp_path, objective={"params": {"seed": 0, "n_dev": 16, "n_test": 16,
                                                         "chat_template": True}})
    refused(["run", config, "--out", tmp_path / "out"], capsys, "chat_template: true",
            "tokenizer has no chat template", "chat_template: false")
    assert not (tmp_path / "out" / "results.json").exists()


def test_run_refuses_more_few_shot_examples_than_train_rows_before_ray(tiny_zoo, tmp_path, capsys):
    config = tiny_config(tmp_path, objective={"params": {"seed": 0, "n_dev": 16, "n_test": 16, "n_train": 1,
                                                         "fewshot": 9}})  # 8 categories: 8 train rows
    refused(["run", config, "--out", tmp_path / "out"], capsys, "fewshot: 9", "lower fewshot")
