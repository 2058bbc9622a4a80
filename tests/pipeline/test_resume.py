"""Resuming a run: after a SIGKILL mid-search, --resume/--fresh, and a cluster too small to start."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from soup_search.cli import main
from tests.helpers import kill_mid_search, write_config

pytestmark = pytest.mark.slow


def count(db: Path, query: str) -> int:
    """A COUNT(*) from a database another process may still be creating (0 until it exists)."""
    if not db.exists():
        return 0
    try:
        return sqlite3.connect(db).execute(query).fetchone()[0]
    except sqlite3.Error:
        return 0


def completed(state: Path) -> int:
    """Trials that count in the budget: scored in full, or stopped by the pruner."""
    return count(state / "optuna.sqlite", "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')")


def logged(state: Path) -> int:
    return count(state / "run.sqlite", "SELECT COUNT(*) FROM evaluations WHERE stage = 'search'")


def test_resume_after_sigkill(tiny_zoo, tmp_path):
    """Kill the driver (SIGKILL, whole process group) mid-search; the same command finishes the study.

    A hook makes every trial after the 2nd block until killed, and say so on a Unix socket: the test
    waits on that socket, so the kill always lands mid-search. A trial logged but not yet told to
    Optuna when the kill lands is reconciled from the trial log on resume."""
    cfg = write_config(tmp_path, "resume", seed=104, n_trials=6)
    out = tmp_path / "resume"
    cmd = [sys.executable, "-m", "soup_search", "run", str(cfg), "--out", str(out)]
    env = {**os.environ, "RAY_ADDRESS": ""}
    kill_mid_search(cmd, tmp_path / "blocked.sock")
    assert 2 <= logged(out / "state") < 6

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
    with pytest.raises(ConfigError, match="need 2.52 CPUs but the cluster has 2"):
        Session(cfg, load_config_candidates(cfg, progress=False), tmp_path / "state")
