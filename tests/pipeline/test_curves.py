"""`soup-search sweep` and `soup-search transfer` on the tiny zoo: real Ray, real checkpoints, the
real commands; and their bad inputs, each one line and exit 2 before any Ray work."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from scipy import stats

from soup_search.cli import main
from tests.helpers import cli, make_checkpoint, write_config

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"


def small_config(tmp_path, name: str, seed: int):
    """A tiny-zoo config with one shard and one scorer: each command starts two actors, not four."""
    path = write_config(tmp_path, name, seed=seed)
    path.write_text(path.read_text().replace("scorers: 2", "scorers: 1").replace("shards: 2", "shards: 1"))
    return path


def same_answers(point: dict, reference: dict) -> None:
    """Two points that scored the same weights: the same accuracies, answers right and wrong, and tokens."""
    assert point["per_category"] == reference["per_category"]
    assert point["per_example"] == reference["per_example"]
    assert point["mean_tokens"] == reference["mean_tokens"]


def check_outputs(out, stem: str, n_points: int) -> dict:
    """The table, the plot and the JSON exist and agree; returns the JSON."""
    data = json.loads((out / f"{stem}.json").read_text())
    assert len(data["points"]) == n_points and data["split"] == "dev"
    table = pd.read_csv(out / f"{stem}.csv")
    assert len(table) == n_points
    assert list(table["mean"]) == pytest.approx([p["mean"] for p in data["points"]], rel=1e-5)  # (%.6g)
    assert (out / f"{stem}.png").read_bytes()[:8] == PNG
    for p in data["points"]:
        counts = [n for per in p["per_example"]["generated_tokens"].values() for n in per]
        assert len(counts) == sum(p["counts"].values())
        assert all(isinstance(n, int) and n >= 0 for n in counts) and p["mean_tokens"] > 0
        assert p["mean_tokens"] == pytest.approx(sum(counts) / len(counts))
        assert p["mean_ci"][0] <= p["mean"] <= p["mean_ci"][1]
        assert p["mean_tokens_ci"][0] <= p["mean_tokens"] <= p["mean_tokens_ci"][1]
        for c, (low, high) in p["per_category_ci"].items():  # scipy's binomial (Wilson) interval
            k = p["per_example"]["correct"][c].count("1")
            ci = stats.binomtest(k, p["counts"][c]).proportion_ci(0.95, method="wilson")
            assert (low, high) == pytest.approx((ci.low, ci.high)) and low <= p["per_category"][c] <= high
    return data


def test_sweep_ends_are_the_two_models_and_the_grid_diagonal_is_the_sweep(tiny_zoo, ray_session, private_scores,
                                                                         tmp_path, capsys):
    cfg = small_config(tmp_path, "sweep", seed=140)
    out = tmp_path / "sweep"
    cli("sweep", "expert_add_sub", "expert_sort_max", "--lambdas", "0:1:0.5", "--config", str(cfg), "--out", str(out))
    data = check_outputs(out, "sweep", 3)
    by_lambda = {p["lambda"]: p for p in data["points"]}
    assert sorted(by_lambda) == [0.0, 0.5, 1.0]
    assert data["names"] == {"a": "expert_add_sub", "b": "expert_sort_max"}
    same_answers(by_lambda[1.0], data["references"]["a"])
    same_answers(by_lambda[0.0], data["references"]["b"])
    assert by_lambda[0.0]["per_example"] != by_lambda[1.0]["per_example"]  # the two experts do differ
    regimes = data["regimes"]
    assert regimes[0]["start"] == 0.0 and regimes[-1]["end"] == 1.0
    assert all(r["end"] == n["start"] for r, n in zip(regimes, regimes[1:]))
    assert "regime lambda 0" in capsys.readouterr().out

    grid = tmp_path / "grid"
    cli("sweep", "expert_add_sub", "expert_sort_max", "--lambdas", "0,0.5", "--per-module", "--config", str(cfg),
        "--out", str(grid))
    cells = {(p["lambda_attn"], p["lambda_mlp"]): p for p in check_outputs(grid, "sweep_modules", 4)["points"]}
    same_answers(cells[0.0, 0.0], by_lambda[0.0])  # the diagonal is the 1-D sweep
    same_answers(cells[0.5, 0.5], by_lambda[0.5])
    assert cells[0.0, 0.5]["recipe"]["parameters"]["lambda"] == [
        {"filter": "self_attn", "value": 0.0}, {"filter": "mlp", "value": 0.5}, {"value": 0.25}]


def test_transfer_at_alpha_zero_is_the_target(tiny_zoo, ray_session, private_scores, tmp_path, capsys):
    cfg = small_config(tmp_path, "transfer", seed=141)
    out = tmp_path / "transfer"
    cli("transfer", "--target", "expert_add_sub", "--plus", "expert_sort_max", "--minus", "base",
        "--alphas", "-1:1:1", "--config", str(cfg), "--out", str(out))
    data = check_outputs(out, "transfer", 3)
    by_alpha = {p["alpha"]: p for p in data["points"]}
    assert sorted(by_alpha) == [-1.0, 0.0, 1.0]
    same_answers(by_alpha[0.0], data["references"]["target"])
    assert by_alpha[1.0]["recipe"]["base_model"] == "expert_add_sub"
    assert [m["parameters"]["weight"] for m in by_alpha[-1.0]["recipe"]["models"]] == [-1.0, 1.0]
    assert by_alpha[1.0]["per_example"] != by_alpha[0.0]["per_example"]
    assert data["notes"][0].startswith("base distance of plus and minus: 0.")
    capsys.readouterr()


def run(argv, capsys) -> tuple[int, str]:
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def strangers(tmp_path_factory):
    """Two random tiny Llamas of the zoo's shape (unrelated to it) and one of another shape."""
    root = tmp_path_factory.mktemp("strangers")
    return {"shape": make_checkpoint(root / "random48", seed=1, hidden_size=48, intermediate_size=96),
            "other": make_checkpoint(root / "random32", seed=2)}


@pytest.mark.parametrize("argv,parts", [
    (["sweep", "expert_add_sub", "base", "--lambdas", "0:1"], ["--lambdas", "START:STOP:STEP"]),
    (["sweep", "expert_add_sub", "base", "--lambdas", "1:0:0.1"], ["--lambdas", "STEP > 0"]),
    (["sweep", "expert_add_sub", "base", "--lambdas", "0,x"], ["--lambdas", "not a range"]),
    (["sweep", "expert_add_sub", "base", "--lambdas", "0:1:0.01", "--per-module"], ["101 × 101 grid"]),
    (["sweep", "expert_add_sub", "{other}"], ["differ", "hidden_size"]),
    (["sweep", "expert_add_sub", "no_such_model"], ["'no_such_model'", "expert_sort_max"]),
    (["sweep", "base", "base"], ["same checkpoint"]),
    (["transfer", "--target", "{other}", "--plus", "expert_add_sub", "--minus", "base"], ["differ", "hidden_size"]),
    (["transfer", "--target", "base", "--plus", "expert_add_sub", "--minus", "{shape}"], ["different bases", "1.00"]),
    (["transfer", "--target", "base", "--plus", "expert_add_sub", "--minus", "expert_add_sub"], ["same checkpoint"]),
])
def test_bad_input_is_one_line_and_exit_2(argv, parts, tiny_zoo, strangers, tmp_path, capsys):
    cfg = write_config(tmp_path, "bad", seed=142)
    argv = [a.format(**strangers) for a in argv] + ["--config", cfg, "--out", tmp_path / "out"]
    code, err = run(argv, capsys)
    assert code == 2, err
    assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(part in err for part in parts), err
    assert not (tmp_path / "out").exists()  # refused before anything was written (or Ray started)
