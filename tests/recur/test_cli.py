"""``soup-search recur`` end to end on a tiny checkpoint, and its one-line errors (exit 2)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch

from soup_search.cli import main
from soup_search.recur.surgery import load_recurrent
from tests.helpers import cli, make_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "parent", seed=2)


@pytest.mark.slow
def test_recur_writes_a_loadable_model_and_accuracy_by_recurrences(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    cli("recur", str(checkpoint), "--split", "1,1,0", "--curriculum", "1,2", "--steps", "4", "--batch-size", "8",
        "--recurrences", "1,2,3", "--out", str(out))
    result = json.loads((out / "recurrence.json").read_text())
    assert result["split"] == [1, 1, 0] and result["curriculum"] == "1,2" and result["settings"]["steps"] == 4
    assert result["train"]["means"] == [1, 1, 2, 2]
    assert [p["recurrences"] for p in result["recurrent_test"]] == [1, 2, 3]
    for point in [result["parent_test"], result["control_test"], *result["recurrent_test"]]:
        low, high = point["ci95"]
        assert point["n"] == 800 and low <= point["accuracy"] <= high and 0 <= low < high <= 1
    assert result["compared_with"] == "control"
    for point in result["recurrent_test"]:  # the paired difference from the control, on the same 800 examples
        vs = point["vs_reference"]
        assert vs["n"] == 800 and vs["delta"] == pytest.approx(point["accuracy"] - result["control_test"]["accuracy"], abs=1e-4)
        assert vs["ci_low"] <= vs["delta"] <= vs["ci_high"] and 0 <= vs["p_value"] <= 1
    rows = list(csv.DictReader((out / "recurrence.csv").open()))
    assert [r["vs_control"] == "" for r in rows] == [True, True, False, False, False]
    assert [r["model"] for r in rows] == ["parent", "parent + 4 steps", "recurrent", "recurrent", "recurrent"]
    assert (out / "recurrence.png").read_bytes()[:4] == b"\x89PNG"
    model, tok = load_recurrent(out / "model")
    assert model.config.num_recurrences == 2 and model.config.prelude_layers == 1
    ids = torch.tensor([[tok.bos_token_id, *tok("add 1+2=", add_special_tokens=False)["input_ids"]]])
    assert model.generate(input_ids=ids, max_new_tokens=3, do_sample=False).shape == (1, ids.shape[1] + 3)
    printed = capsys.readouterr().out
    assert "test accuracy by recurrences" in printed and "recurrent" in printed


@pytest.mark.parametrize("args, needle", [
    (["--split", "1,1,1"], "covers 3 layers but the checkpoint has 2"),
    (["--split", "1,1,0", "--curriculum", "cubic:1:4"], "--curriculum 'cubic:1:4' does not parse"),
    (["--split", "1,1", "--curriculum", "0,1", "--steps", "0"], "3 problems"),
    (["--split", "1,1,0", "--recurrences", "0:4"], "--recurrences '0:4' is not a range"),
    (["--split", "1,1,0", "--curriculum", "linear:1:4"], "unknown zoo size 'huge'"),
])
def test_bad_input_is_one_line_and_exit_2(checkpoint, tmp_path, capsys, args, needle):
    target = "zoo:huge/base" if "huge" in needle else str(checkpoint)
    argv = ["recur", target, "--steps", "2", "--out", str(tmp_path / "out"), *args]
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and needle in " ".join(err.split())
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_missing_checkpoint_is_one_line_and_exit_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "soup_search", "recur", str(tmp_path / "missing"), "--split", "1,1,0",
                           "--steps", "2", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "cannot read a checkpoint" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
