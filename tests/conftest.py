"""Shared fixtures: a real local Ray cluster and the tiny toy zoo, each built once per session, and
a real PostgreSQL server per test module, and the vLLM stand-in."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import FAKE_VLLM, PostgresServer

# keep every test's caches (zoo, score cache) out of the user's home
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """A fresh cache per session (zoo, scores); SOUP_SEARCH_TEST_CACHE reuses one between sessions.

    Under pytest-xdist each worker has its own score cache, and all workers share one zoo folder
    (the zoo is built once, under a file lock, by whichever worker needs it first)."""
    reuse = os.environ.get("SOUP_SEARCH_TEST_CACHE")
    path = Path(reuse) if reuse else tmp_path_factory.mktemp("soup-cache")
    if not reuse and os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent / "shared-zoo"
        shared.mkdir(exist_ok=True)
        (path / "zoo").symlink_to(shared, target_is_directory=True)
    old = os.environ.get("SOUP_SEARCH_CACHE_DIR")
    os.environ["SOUP_SEARCH_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SOUP_SEARCH_CACHE_DIR", None)
    else:
        os.environ["SOUP_SEARCH_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray cluster with 2 CPUs for the whole test session."""
    import ray

    from soup_search.engine.cluster import TRIAL_SLOT

    if not ray.is_initialized():  # as start_ray starts it: a trial slot per scorer
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, resources={TRIAL_SLOT: 2},
                 runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_zoo(cache_dir):
    """The tiny toy zoo (base + experts), trained once per session into the test cache."""
    from filelock import FileLock

    from soup_search.zoo import build_zoo

    with FileLock(str((cache_dir / "zoo").resolve().parent / "zoo.lock")):
        return build_zoo(size="tiny", progress=False)


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL 15 server for one test module (:class:`tests.helpers.PostgresServer`):
    ``.url()``, ``.create_database(name)``, ``.restart()`` / ``.stop()`` / ``.start()``.
    A server that cannot start fails the test; it is never skipped."""
    try:
        server = PostgresServer(Path(tempfile.mkdtemp(prefix="soup-pg-")))
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        pytest.fail(f"PostgreSQL could not start: {err}")
    yield server
    server.close()


@pytest.fixture()
def fake_vllm(monkeypatch):
    """The stand-in importable as ``vllm``, under vLLM's default environment."""
    monkeypatch.syspath_prepend(str(FAKE_VLLM))
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    for name in ("vllm", "vllm.inputs"):
        sys.modules.pop(name, None)
    import vllm

    yield vllm
    for name in ("vllm", "vllm.inputs"):
        sys.modules.pop(name, None)
