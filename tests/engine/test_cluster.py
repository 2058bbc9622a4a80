"""Starting Ray: a start-up that times out on a loaded machine is retried once, then refused in one line."""

from __future__ import annotations

import pytest
import ray

from soup_search.engine import cluster
from soup_search.errors import ConfigError

TIMED_OUT = "The current node timed out during startup. This could happen because some of the Ray processes failed"


@pytest.fixture
def fake_ray(monkeypatch):
    """ray.init recorded and made to raise what each test sets; no Ray is started."""
    calls: list[dict] = []
    state = {"raise": [], "shutdowns": 0}

    def init(**kwargs):
        calls.append(kwargs)
        if state["raise"]:
            raise state["raise"].pop(0)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: state.__setitem__("shutdowns", state["shutdowns"] + 1))
    return calls, state


def test_a_start_that_times_out_is_retried_once_then_refused(fake_ray):
    calls, state = fake_ray
    state["raise"] = [Exception(TIMED_OUT), Exception(TIMED_OUT)]
    with pytest.raises(ConfigError) as err:
        cluster.start_ray(num_cpus=2)
    assert len(calls) == 2 and state["shutdowns"] == 2
    assert all(c["address"] == "local" and c["num_cpus"] == 2 for c in calls)
    msg = str(err.value)
    assert "\n" not in msg and "did not start in time twice" in msg and "resources.address" in msg


def test_a_start_that_times_out_once_succeeds_on_the_retry(fake_ray):
    calls, state = fake_ray
    state["raise"] = [Exception(TIMED_OUT)]
    assert cluster.start_ray(num_cpus=2) is ray
    assert len(calls) == 2


def test_other_start_errors_are_not_retried(fake_ray):
    calls, state = fake_ray
    state["raise"] = [RuntimeError("something else")]
    with pytest.raises(RuntimeError, match="something else"):
        cluster.start_ray(num_cpus=2)
    assert len(calls) == 1


def test_an_address_nobody_answers_is_refused_before_ray_init(fake_ray):
    calls, _ = fake_ray
    with pytest.raises(ConfigError, match="no Ray cluster answers at 127.0.0.1:1"):
        cluster.start_ray(address="127.0.0.1:1")
    assert calls == []
