"""`soup-search profile` and `run` end to end on the tiny zoo: real Ray, real Optuna storage, real checkpoints."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from soup_search.engine.run_store import read_evaluations
from soup_search.pipeline.state import STATE
from tests.helpers import cli, write_config

pytestmark = pytest.mark.slow


def test_profile_scores_every_candidate_once(tiny_zoo, ray_session, private_scores, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from soup_search.objectives import get_objective
    from soup_search.scoring.generation import evaluate

    seed = 101
    cfg = write_config(tmp_path, "prof", seed=seed)
    cli("profile", str(cfg), "--out", str(tmp_path / "p"))
    frame = pd.read_csv(tmp_path / "p" / "scores.csv", index_col=0)
    assert list(frame.index) == list(tiny_zoo.experts)
    assert len(frame.columns) == 8 and ((frame >= 0) & (frame <= 1)).all().all()
    stats = json.loads((tmp_path / "p" / "profile.json").read_text())
    assert stats["scored"] == len(tiny_zoo.experts) and stats["cached"] == 0
    assert stats["examples_per_s_per_scorer"] > 0

    # the weights that travelled through shard and scorer actors score as the checkpoint on disk does
    import torch

    name, path = next(iter(tiny_zoo.experts.items()))
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the scorer actors: the same reduction order, the same greedy tokens
    try:
        direct = evaluate(model, AutoTokenizer.from_pretrained(path),
                          get_objective("toy", seed=seed, n_dev=24, n_test=24), "dev")
    finally:
        torch.set_num_threads(threads)
    assert frame.loc[name].to_dict() == pytest.approx(direct.per_category)

    # a second profile scores nothing: the cache answers
    cli("profile", str(cfg), "--out", str(tmp_path / "p2"))
    again = json.loads((tmp_path / "p2" / "profile.json").read_text())
    assert again["scored"] == 0 and again["cached"] == len(tiny_zoo.experts)
    capsys.readouterr()


def test_run_end_to_end(tiny_zoo, ray_session, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    from soup_search.merge import MergeRecipe

    # three categories: at most 4 baselines (uniform + each expert), all inside the 6-trial budget
    cfg = write_config(tmp_path, "e2e", seed=102, n_trials=6, categories=["sort", "reverse", "count"])
    out = tmp_path / "run"
    cli("run", str(cfg), "--out", str(out))
    printed = capsys.readouterr().out
    assert "held-out comparison" in printed

    results = json.loads((out / "results.json").read_text())
    assert {"config", "trials", "best", "comparison", "timings", "analysis"} <= set(results)
    assert len(results["trials"]) == 6
    best_dev = max(t["dev_mean"] for t in results["trials"])
    assert results["best"]["dev_mean"] == pytest.approx(best_dev)
    assert {"recipe", "weights", "dev_mean", "test_mean", "test_per_category"} <= set(results["best"])
    kinds = [row["kind"] for row in results["comparison"]]
    assert kinds[0] == "soup" and {"expert", "uniform_all", "uniform_experts"} <= set(kinds)
    for row in results["comparison"]:
        assert {"name", "kind", "recipe", "dev_mean", "test_mean", "test_per_category"} <= set(row)
        # the analysis looked at three categories; the objective still scores all eight
        assert len(row["test_per_category"]) == 8
    # the best soup is no worse on dev than any expert or uniform soup (they were all enqueued or evaluated)
    experts_dev = [r["dev_mean"] for r in results["comparison"] if r["kind"] in ("expert", "uniform_experts")]
    assert results["best"]["dev_mean"] >= max(experts_dev) - 1e-9
    assert set(results["timings"]) >= {"profile_analyze", "search", "final_eval", "total"}

    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 6 and "dev_mean" in trials
    assert "## Held-out comparison" in (out / "report.md").read_text()
    for png in ("optimization_history.png", "weights_vs_dev.png", "comparison.png"):
        data = (out / "plots" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    model = AutoModelForCausalLM.from_pretrained(out / "best")
    assert model.config.num_hidden_layers == 2
    recipe = MergeRecipe.from_yaml(out / "soup.yaml")
    assert all(Path(m.model).is_dir() for m in recipe.models)

    # the final report scored the held-out split: it is in the score cache, keyed by split
    cache = sqlite3.connect(Path(os.environ["SOUP_SEARCH_CACHE_DIR"]) / "scores" / "scores.sqlite")
    splits = dict(cache.execute("SELECT split, COUNT(*) FROM scores GROUP BY split").fetchall())
    assert splits.get("test", 0) >= 1


def trial_actors_created() -> int:
    """Tune trial actors this Ray instance ever created (dead ones included): from the GCS."""
    from ray._private import state

    return sum("ImplicitFunc" in a.get("ActorClassName", "") for a in state.actors().values())


def test_grid_sampler_is_the_paper_grid(tiny_zoo, ray_session, tmp_path, capsys):
    before = trial_actors_created()
    cfg = write_config(tmp_path, "grid", seed=103, sampler="grid", categories=["reverse", "count"],
                       tau=0.999)
    out = tmp_path / "grid"
    cli("run", str(cfg), "--out", str(out))
    results = json.loads((out / "results.json").read_text())
    groups = results["analysis"]["weak_categories"]
    assert len(groups) == 2
    first = results["analysis"]["experts"][groups[0]]
    firsts = [round(t["weights"]["all"].get(first, 0.0), 6) for t in results["trials"]]
    # the grid's 9 points (0.1 … 0.9 for the first expert, the rest to the second), each expert alone; none twice
    assert sorted(firsts) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert "grid_best" in [r["kind"] for r in results["comparison"]]
    # each expert alone is in the score cache (the profile scored it): logged by the driver, no trial
    rows = read_evaluations(out / STATE / "run.sqlite", "search")
    assert sum(row["cached"] for row in rows) == 2
    assert {row["timings"]["pid"] for row in rows if row["cached"]} == {os.getpid()}
    # Tune hands a finished trial's actor to the next trial: the 9 grid trials ran in at most
    # 2 processes (one per scorer), not one new worker process per trial
    pids = {row["timings"]["pid"] for row in rows if not row["cached"]}
    assert 1 <= len(pids) <= 2
    # and Tune started about one actor per scorer, not one per trial (11 without trial slots). A
    # trial whose actor is still starting takes a finished trial's instead (Tune removes its own),
    # so a few more may start when trials are as short as these
    assert trial_actors_created() - before <= 5
    capsys.readouterr()
