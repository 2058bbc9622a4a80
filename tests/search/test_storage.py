"""The Optuna storage on a real PostgreSQL server: pool settings, a restart between calls, a server
down during a call (the call waits for it), and one that stays down (one line, after a bound)."""

from __future__ import annotations

import inspect

import optuna
import pytest

from soup_search.search import storage as storage_module
from soup_search.search.storage import (
    TRANSACTIONS, ServerStorage, StorageUnavailableError, engine_kwargs, open_storage,
)

pytestmark = pytest.mark.slow  # starts a PostgreSQL server


def test_engine_settings_per_backend(tmp_path):
    assert engine_kwargs(f"sqlite:///{tmp_path / 'o.sqlite'}") == {"connect_args": {"timeout": 60}}
    pg = engine_kwargs("postgresql+psycopg://u@h/db")
    assert pg["pool_size"] == 1 and pg["max_overflow"] == 2 and pg["pool_pre_ping"] is True
    assert pg["connect_args"]["application_name"] == "soup-search"
    assert type(open_storage(f"sqlite:///{tmp_path / 'o.sqlite'}")) is optuna.storages.RDBStorage


def test_every_transaction_of_optuna_is_retried():
    """Guards an Optuna upgrade: a new method that opens a session must be in TRANSACTIONS."""
    opens = {name for name, fn in vars(optuna.storages.RDBStorage).items()
             if inspect.isfunction(fn) and "_create_scoped_session(" in inspect.getsource(fn)}
    assert opens == set(TRANSACTIONS)
    assert all(getattr(ServerStorage, name) is not getattr(optuna.storages.RDBStorage, name) for name in TRANSACTIONS)


def test_a_restart_between_calls_costs_nothing(postgres, monkeypatch):
    """The pooled connection dies with the restart; pool_pre_ping replaces it before use."""
    storage = open_storage(postgres.create_database("between"))
    assert isinstance(storage, ServerStorage)
    study = optuna.create_study(study_name="s", storage=storage)
    study.add_trial(optuna.trial.create_trial(value=1.0))
    waits = []
    monkeypatch.setattr(storage_module, "sleep", waits.append)
    postgres.restart()
    # a read first: Optuna itself retries trial creation, not the other calls
    assert [t.value for t in optuna.load_study(study_name="s", storage=storage).trials] == [1.0]
    assert waits == []  # no call failed: the stale connection was never used
    storage.engine.dispose()


def test_a_call_waits_for_the_server_to_come_back(postgres, monkeypatch):
    url = postgres.create_database("down")
    storage = open_storage(url)
    study = optuna.create_study(study_name="s", storage=storage)
    postgres.stop()
    waits = []

    def wait(seconds):  # the first pause of the retry loop brings the server back
        waits.append(seconds)
        if len(waits) == 1:
            postgres.start()

    monkeypatch.setattr(storage_module, "sleep", wait)
    trial = study.ask()  # fails while the server is down, then runs again
    study.tell(trial, 0.5)
    assert len(waits) >= 1
    assert [t.value for t in optuna.load_study(study_name="s", storage=storage).trials] == [0.5]
    storage.engine.dispose()


def test_a_server_that_stays_down_fails_in_one_line(postgres, monkeypatch):
    url = postgres.create_database("gone").replace("postgres@", "postgres:secret@")
    storage = open_storage(url)
    study = optuna.create_study(study_name="s", storage=storage)
    monkeypatch.setattr(storage_module, "RETRY_FOR_S", 0.3)
    postgres.stop()
    try:
        with pytest.raises(StorageUnavailableError) as err:
            study.ask()
    finally:
        postgres.start()
    message = str(err.value)
    assert "\n" not in message and "secret" not in message
    assert "did not answer for 0.3 s (OperationalError)" in message
    assert message.startswith("the Optuna storage postgresql+psycopg://postgres:***@127.0.0.1")
    assert "run the same command again to resume" in message
    storage.engine.dispose()
