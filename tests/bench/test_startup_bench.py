"""``soup-search bench startup``: the stages of a run's start-up, each run on a Ray instance of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from soup_search.bench.startup import Startup, startup_config
from soup_search.config import load_config
from tests.helpers import write_config


def test_startup_is_ray_and_the_actors_and_the_way_to_the_first_trial_not_the_profile():
    s = Startup(before_ray=1.0, actors=8.0, profile=3.0, to_first_trial=4.5)
    assert s.startup == 12.5


def test_the_bench_runs_a_few_trials_without_the_grid(tmp_path):
    cfg = startup_config(load_config(write_config(tmp_path, "startup", seed=131, grid=True, n_trials=40)))
    assert cfg.search.n_trials == 3 and not cfg.search.grid


@pytest.mark.slow
def test_bench_startup_times_two_runs_each_on_a_fresh_ray(tiny_zoo, tmp_path):
    out = tmp_path / "startup.json"
    # its own process: each run starts and ends a private Ray instance (never this test process's)
    proc = subprocess.run([sys.executable, "-m", "soup_search", "bench", "startup", "--config",
                           str(write_config(tmp_path, "startup", seed=131)), "--repeats", "2", "--json", str(out)],
                          capture_output=True, text=True, env={**os.environ, "RAY_ADDRESS": ""}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "start-up" in proc.stdout and "Traceback" not in proc.stderr
    figures = json.loads(out.read_text())
    runs = figures["repeats"]
    assert len(runs) == 2
    for run in runs:
        assert all(run[stage] > 0 for stage in ("before_ray", "actors", "profile", "to_first_trial"))
        assert run["startup"] == pytest.approx(run["actors"] + run["to_first_trial"])
    # the first run's process start comes before its Ray start: imports are not start-up, but shown
    assert figures["process_to_first_trial"] > runs[0]["startup"]
    assert figures["mean"]["startup"]["ci_low"] <= figures["mean"]["startup"]["mean"] <= figures["mean"]["startup"]["ci_high"]


def test_bench_startup_refuses_a_missing_config_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "soup_search", "bench", "startup", "--config",
                           str(tmp_path / "missing.yaml"), "--json", str(tmp_path / "out.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "missing.yaml" in proc.stderr
    assert not (tmp_path / "out.json").exists()
