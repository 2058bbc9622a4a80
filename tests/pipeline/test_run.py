"""The whole pipeline on the tiny zoo, through real Ray, real Optuna storage and real checkpoints."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from soup_search.cli import main
from tests.helpers import cli, write_config

pytestmark = pytest.mark.slow


def completed(state: Path) -> int:
    db = state / "optuna.sqlite"
    if not db.exists():
        return 0
    try:
        return sqlite3.connect(db).execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture
def private_scores(cache_dir, tiny_zoo, tmp_path, monkeypatch):
    """A score cache of this test's own (the zoo is shared): nothing is cached before it."""
    private = tmp_path / "cache"
    private.mkdir()
    (private / "zoo").symlink_to(cache_dir / "zoo", target_is_directory=True)
    monkeypatch.setenv("SOUP_SEARCH_CACHE_DIR", str(private))
    return private / "scores"


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


def test_grid_sampler_is_the_paper_grid(tiny_zoo, ray_session, tmp_path, capsys):
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
    capsys.readouterr()


def logged(state: Path) -> int:
    db = state / "run.sqlite"
    if not db.exists():
        return 0
    try:
        return sqlite3.connect(db).execute("SELECT COUNT(*) FROM evaluations WHERE stage = 'search'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_resume_after_sigkill(tiny_zoo, tmp_path):
    """Kill the driver (SIGKILL, whole process group) mid-search; the same command finishes the study.

    A hook makes every trial after the 2nd block until killed, so the kill always lands mid-search."""
    cfg = write_config(tmp_path, "resume", seed=104, n_trials=6)
    out = tmp_path / "resume"
    cmd = [sys.executable, "-m", "soup_search", "run", str(cfg), "--out", str(out)]
    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = subprocess.Popen(cmd, env={**env, "SOUP_SEARCH_BLOCK_AFTER_TRIALS": "2"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # wait for the condition: 2+ trials logged and every logged trial told to Optuna (the rest block)
    deadline = time.monotonic() + 300
    while not (logged(out / "state") >= 2 and completed(out / "state") == logged(out / "state")):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no trial was logged within 300 s"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = completed(out / "state")
    assert 2 <= done_before < 6

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert completed(out / "state") == 6  # no completed trial lost, none beyond the budget
    results = json.loads((out / "results.json").read_text())
    assert len(results["trials"]) == 6
    # no weights were scored twice: every really-scored search evaluation is a distinct recipe
    rows = sqlite3.connect(out / "state" / "run.sqlite").execute(
        "SELECT recipe FROM evaluations WHERE stage = 'search' AND cached = 0").fetchall()
    assert len(rows) == len({r[0] for r in rows})


def test_resume_flag_and_config_change(tiny_zoo, tmp_path, capsys):
    cfg = write_config(tmp_path, "flags", seed=105)
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(cfg), "--out", str(tmp_path / "none"), "--resume"])
    assert exit_.value.code == 2
    assert "nothing to resume" in capsys.readouterr().err
    state = tmp_path / "other" / "state"
    state.mkdir(parents=True)
    (state / "config.json").write_text(json.dumps({"fingerprint": "different"}))
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(cfg), "--out", str(tmp_path / "other")])
    assert exit_.value.code == 2
    assert "different config" in capsys.readouterr().err


def test_too_small_a_cluster_is_refused_not_hung(tiny_zoo, ray_session, tmp_path):
    from soup_search.config import load_config
    from soup_search.errors import ConfigError
    from soup_search.pipeline.candidate_set import load_config_candidates
    from soup_search.engine.cluster import cpus_needed
    from soup_search.engine.session import Session

    cfg = load_config(write_config(tmp_path, "big", seed=108))
    cfg = cfg.model_copy(update={"resources": cfg.resources.model_copy(update={"scorer_cpus": 1.0})})
    assert cpus_needed(cfg) > ray_session.cluster_resources()["CPU"]
    with pytest.raises(ConfigError, match="need 2.53 CPUs but the local Ray instance"):
        Session(cfg, load_config_candidates(cfg, progress=False), tmp_path / "state")


@pytest.fixture(scope="module")
def spy_session(tiny_zoo, ray_session, tmp_path_factory):
    """One session for the in-process tests below, its objective a spy that logs every split asked for."""
    from soup_search.config import load_config
    from soup_search.engine.session import open_session
    from soup_search.objectives import register_objective
    from soup_search.pipeline.candidate_set import load_config_candidates
    from tests.helpers import SpyObjective

    register_objective("spy", SpyObjective)
    root = tmp_path_factory.mktemp("spy")
    log = root / "splits.log"
    path = write_config(root, "spy", seed=106, objective="spy", objective_params={"log": str(log)},
                        n_trials=4, categories=["sort", "reverse", "count"], tau=0.999)
    data = yaml.safe_load(path.read_text())
    data["objective"]["held_out_categories"] = ["add"]
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path)
    candidates = load_config_candidates(cfg, progress=False)
    with open_session(cfg, candidates, root / "state", score_cache=root / "scores.sqlite") as session:
        yield cfg, session, root, log


def test_search_sees_no_test_example_and_no_held_out_category_before_the_final_report(spy_session):
    """The spy records every split any scorer process asks for, and the categories it handed out:
    the search asks only for dev, never sees the held-out category, and the final report scores it."""
    from soup_search.pipeline.final_eval import best_trial, comparison_specs, evaluate_comparison, trial_records
    from soup_search.pipeline.run import profile_and_analyze, search
    from tests.helpers import spy_calls

    cfg, session, root, log = spy_session
    _, analysis, space = profile_and_analyze(cfg, session, root)
    search(cfg, session, space, root)
    asked = spy_calls(log)
    assert asked and {(split, held) for split, held, _ in asked} == {("dev", False)}
    assert all("add" not in cats for _, _, cats in asked) and "add" not in analysis.categories

    trials = trial_records(session.evaluations("search"))
    specs = comparison_specs(session.candidates.names, space, analysis, best_trial(trials), None)
    rows = evaluate_comparison(session, specs)
    final = spy_calls(log)[len(asked):]
    tests = [(held, cats) for split, held, cats in final if split == "test"]
    assert tests and all(held and "add" in cats for held, cats in tests)
    assert all(not held and "add" not in cats for split, held, cats in final if split == "dev")
    # the held-out category is scored, kept out of the objective, and reported as transfer
    soup = rows[0]
    assert "add" in soup.test_per_category and soup.transfer_mean == soup.test_per_category["add"]
    assert rows[1].transfer_vs_best is not None and rows[1].vs_best.n == 24 * 7


def test_the_search_cannot_score_the_test_split(spy_session):
    from soup_search.errors import ObjectiveError
    from soup_search.pipeline.category_scores import single_recipe
    from soup_search.search.trial import TrialContext, evaluate_recipe

    _, session, _, _ = spy_session
    with pytest.raises(ObjectiveError, match="refuses to score the test split"):
        evaluate_recipe(single_recipe(session.candidates.names[0]), TrialContext.of(session, stage="test"), "test")


def test_crashed_actors_are_restarted_and_the_call_retried(spy_session):
    """Runs last in this module: it kills every scorer and shard actor of the shared session."""
    import ray

    from soup_search.pipeline.category_scores import single_recipe
    from soup_search.search.trial import TrialContext, evaluate_recipe

    _, session, _, _ = spy_session
    ctx = TrialContext.of(session, stage="crash")
    names = session.candidates.names
    first, _, _ = evaluate_recipe(single_recipe(names[0]), ctx, "dev")
    calls = sum(s["calls"] for s in ray.get([a.stats.remote() for a in session.scorers.actors]))
    for actor in session.scorers.actors:
        ray.kill(actor, no_restart=False)  # a crash: Ray restarts the actor (max_restarts)
    for actor in session.shards.actors:
        ray.kill(actor, no_restart=False)
    fresh = {"all": {names[0]: 0.5, names[1]: 0.5}}  # weights never scored before
    from soup_search.search.trial import soup_recipe

    again, _, cached = evaluate_recipe(soup_recipe(fresh), ctx, "dev")
    assert not cached and again.n == first.n
    # the restarted actors start counting from zero: exactly one call since the crash
    assert sum(s["calls"] for s in ray.get([a.stats.remote() for a in session.scorers.actors])) == 1
    assert calls >= 1
