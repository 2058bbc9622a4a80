"""Searches whose Optuna study lives on a real PostgreSQL server (the root ``postgres`` fixture):
the budget is met exactly, a SIGKILLed driver resumes from it, and a server restart mid-search
does not end the search. Real Ray, the tiny zoo, 2 scorers (so 2 trials at once)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from soup_search.search.storage import APPLICATION_NAME, MAX_OVERFLOW, open_storage
from tests.helpers import cli, kill_mid_search, write_config

pytestmark = pytest.mark.slow

FINISHED = ("COMPLETE", "PRUNED")


def study_rows(url: str) -> list[tuple[str, str]]:
    """(state, params as JSON) of every trial in the database at ``url``."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT t.state::text, COALESCE(json_agg(json_build_array(p.param_name, p.param_value) "
                "ORDER BY p.param_name) FILTER (WHERE p.param_name IS NOT NULL), '[]')::text "
                "FROM trials t LEFT JOIN trial_params p ON p.trial_id = t.trial_id GROUP BY t.trial_id"))]
    finally:
        engine.dispose()


def finished(url: str) -> list[str]:
    """The params of the trials that count in the budget."""
    return [params for state, params in study_rows(url) if state in FINISHED]


def search_logged(state: Path) -> int:
    db = state / "run.sqlite"
    if not db.exists():
        return 0
    try:
        return sqlite3.connect(db).execute("SELECT COUNT(*) FROM evaluations WHERE stage = 'search'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_search_on_postgres_meets_its_budget(postgres, tiny_zoo, ray_session, tmp_path, capsys):
    url = postgres.create_database("budget")
    cfg = write_config(tmp_path, "pg", seed=141, n_trials=8, storage=url)
    cli("run", str(cfg), "--out", str(tmp_path / "run"))
    capsys.readouterr()
    done = finished(url)
    assert len(done) == 8 and len(set(done)) == 8  # the budget exactly, no trial told twice
    assert len(json.loads((tmp_path / "run" / "results.json").read_text())["trials"]) == 8
    assert not (tmp_path / "run" / "state" / "optuna.sqlite").exists()  # the study is on the server only


def test_resume_after_sigkill_on_postgres(postgres, tiny_zoo, tmp_path):
    """As tests/pipeline/test_resume.py, with the study on the server: the driver is killed while a
    trial blocks (the test waits on the hook's socket), and the same command ends at the budget."""
    url = postgres.create_database("resume")
    cfg = write_config(tmp_path, "pgresume", seed=142, n_trials=6, storage=url)
    out = tmp_path / "resume"
    cmd = [sys.executable, "-m", "soup_search", "run", str(cfg), "--out", str(out)]
    env = {**os.environ, "RAY_ADDRESS": ""}
    kill_mid_search(cmd, tmp_path / "blocked.sock")
    assert 2 <= search_logged(out / "state") < 6
    assert len(finished(url)) < 6

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    done = finished(url)
    assert len(done) == 6 and len(set(done)) == 6
    assert len(json.loads((out / "results.json").read_text())["trials"]) == 6


NOTIFY_ON_FINISH = """
CREATE FUNCTION notify_finished() RETURNS trigger AS $$
BEGIN
  IF NEW.state::text IN ('COMPLETE', 'PRUNED') THEN PERFORM pg_notify('finished', NEW.trial_id::text); END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER finished AFTER UPDATE OF state ON trials FOR EACH ROW EXECUTE FUNCTION notify_finished();
"""


class RestartOnFirstTrial(threading.Thread):
    """Waits (LISTEN) for the first finished trial, notes the run's connections and how many
    trials were finished, then restarts the server (``pg_ctl restart -m fast``)."""

    def __init__(self, postgres, url: str):
        super().__init__(daemon=True)
        self.postgres, self.url = postgres, url.replace("postgresql+psycopg", "postgresql")
        self.listening, self.error = threading.Event(), None
        self.connections = self.finished_at_restart = None

    def run(self):
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute("LISTEN finished")
                self.listening.set()
                assert list(conn.notifies(timeout=300, stop_after=1)), "no trial finished in 300 s"
                self.connections = conn.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s",
                                                (APPLICATION_NAME,)).fetchone()[0]
            self.finished_at_restart = len(finished(self.url.replace("postgresql", "postgresql+psycopg", 1)))
            self.postgres.restart()
        except BaseException as err:  # reported by the test
            self.error = err
        finally:
            self.listening.set()


def test_a_server_restart_mid_search_does_not_end_it(postgres, tiny_zoo, ray_session, tmp_path, capsys):
    url = postgres.create_database("restart")
    open_storage(url).engine.dispose()  # Optuna's tables, so that the trigger can be put on them
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(NOTIFY_ON_FINISH)
    engine.dispose()
    restarter = RestartOnFirstTrial(postgres, url)
    restarter.start()
    assert restarter.listening.wait(60)

    cfg = write_config(tmp_path, "pgrestart", seed=143, n_trials=8, storage=url)
    cli("run", str(cfg), "--out", str(tmp_path / "run"))
    capsys.readouterr()
    restarter.join(120)
    assert restarter.error is None, restarter.error
    assert 1 <= restarter.finished_at_restart < 8  # the restart landed mid-search
    assert 1 <= restarter.connections <= 1 + MAX_OVERFLOW  # the driver's pool: one connection, not one per trial
    done = finished(url)
    assert len(done) == 8 and len(set(done)) == 8
    assert len(json.loads((tmp_path / "run" / "results.json").read_text())["trials"]) == 8
