"""The Optuna storage of a study: an SQLite file in the run folder, or a database server
(``search.storage: postgresql+psycopg://user@host:5432/db``) that survives a restart.

Who holds connections: only the driver. Tune runs :class:`~ray.tune.search.optuna.OptunaSearch`
in the driver, on the one thread of its controller, and trials log to the run store, never to
Optuna; so a run holds one engine per study (search, then grid), and one storage call at a time
uses a connection, however many trials run at once. The pool keeps that one connection open
(``pool_size=1``) and checks it before use (``pool_pre_ping``: a connection the server dropped is
replaced, not used); ``max_overflow`` allows a few more should calls ever overlap, and returns
them when done. Several searches on one server need about one connection each.

A storage call that fails because the server is gone (restarting, a network blip) is run again
until :data:`RETRY_FOR_S` seconds have passed, then fails with one line
(:class:`StorageUnavailableError`). Each storage call is one transaction, so running it again is
safe; the one narrow case is a commit that the server made but whose answer the restart cut off:
a trial created twice leaves an extra RUNNING trial, which the next resume marks FAIL and the
budget does not count.
"""

from __future__ import annotations

import functools
from time import monotonic, sleep

import optuna
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from soup_search.errors import SoupSearchError

#: how long a storage call keeps trying while the database server is unreachable
RETRY_FOR_S = 60.0
#: the name the run's connections carry on a PostgreSQL server (``pg_stat_activity.application_name``)
APPLICATION_NAME = "soup-search"
#: connections a storage opens beyond the one it keeps (see the module docstring)
MAX_OVERFLOW = 2


class StorageUnavailableError(SoupSearchError):
    """The database server of the Optuna storage stayed unreachable for :data:`RETRY_FOR_S` seconds."""


def engine_kwargs(url: str) -> dict:
    """SQLAlchemy engine settings for the storage at ``url``."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}  # a busy file waits instead of failing at once
    kwargs = {"pool_size": 1, "max_overflow": MAX_OVERFLOW, "pool_pre_ping": True, "pool_timeout": RETRY_FOR_S}
    if make_url(url).get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 10, "application_name": APPLICATION_NAME}
    return kwargs


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The Optuna storage at ``url``; on a database server, calls outlast a server restart."""
    if url.startswith("sqlite"):
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url))
    return _call_again(lambda: ServerStorage(url, engine_kwargs=engine_kwargs(url)), url)


def _disconnected(err: BaseException) -> bool:
    """Whether ``err`` (or what Optuna wrapped in it) says the server could not be reached."""
    while err is not None:
        if isinstance(err, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        if isinstance(err, sa_exc.DBAPIError) and err.connection_invalidated:
            return True
        err = err.__cause__ or err.__context__
    return False


def _call_again(call, url: str):
    """``call()``, run again while the server is unreachable, for at most :data:`RETRY_FOR_S` seconds."""
    deadline, pause = None, 0.1
    while True:
        try:
            return call()
        except (sa_exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as err:
            if not _disconnected(err):
                raise
            now = monotonic()
            deadline = deadline or now + RETRY_FOR_S
            if now >= deadline:
                where = make_url(url).render_as_string(hide_password=True)
                raise StorageUnavailableError(
                    f"the Optuna storage {where} did not answer for {RETRY_FOR_S:g} s "
                    f"({type(_root(err)).__name__}); start the database server, then run the same "
                    f"command again to resume") from err
            sleep(min(pause, deadline - now))
            pause = min(pause * 2, 2.0)


def _root(err: BaseException) -> BaseException:
    while err.__cause__ is not None:
        err = err.__cause__
    return err


#: the RDBStorage methods that run one transaction each (those calling ``_create_scoped_session``;
#: the public calls go through them, and Optuna's trial cache calls the private ones directly)
TRANSACTIONS = (
    "_create_new_trial", "_get_best_trial_id", "_get_stale_trial_ids", "_get_trials", "_set_trial_param",
    "create_new_study", "delete_study", "get_all_studies", "get_study_directions", "get_study_id_from_name",
    "get_study_name_from_id", "get_study_system_attrs", "get_study_user_attrs", "get_trial",
    "get_trial_id_from_study_id_trial_number", "get_trial_param", "get_trial_system_attrs",
    "get_trial_user_attrs", "record_heartbeat", "set_study_system_attr", "set_study_user_attr",
    "set_trial_intermediate_value", "set_trial_state_values", "set_trial_system_attr", "set_trial_user_attr",
)


def _retried(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        return _call_again(lambda: method(self, *args, **kwargs), self.url)

    return call


class ServerStorage(optuna.storages.RDBStorage):
    """RDBStorage whose transactions are run again while its database server is unreachable.

    A subclass, not a wrapper, because Optuna puts its trial cache (``_CachedStorage``) only
    around an ``RDBStorage``; it changes nothing but wraps each transaction in :func:`_call_again`."""


for _name in TRANSACTIONS:
    setattr(ServerStorage, _name, _retried(getattr(optuna.storages.RDBStorage, _name)))
