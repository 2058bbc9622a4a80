"""Service fixtures: ``soup-search serve`` as a real subprocess on a free loopback port, with its
own data dir, database, embedded Ray head (job server) and tokens; stopped, head too, at the end."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from soup_search.service.process import ServiceProcess, free_port, make_token, wait_for  # noqa: F401

#: seconds a tiny search has to finish
SEARCH_S = 600.0

Service = ServiceProcess


@pytest.fixture
def service_dir(tmp_path):
    return tmp_path / "service"


@pytest.fixture
def service(service_dir, tiny_zoo):
    """A started service (tiny zoo built, so the job finds it cached); stopped with its head after the test."""
    svc = Service(service_dir)
    yield svc
    svc.stop()
    svc.stop_ray()


def tiny_config_text(n_trials: int = 4, name: str = "tiny") -> str:
    import yaml

    data = yaml.safe_load((Path(__file__).parents[2] / "configs" / "tiny.yaml").read_text())
    data["name"] = name
    data["search"]["n_trials"] = n_trials
    return yaml.safe_dump(data)


def wait_state(client: httpx.Client, search_id: str, states: tuple[str, ...], timeout: float = SEARCH_S) -> dict:
    def look():
        body = client.get(f"/v1/searches/{search_id}").json()
        return body if body["state"] in states else None
    return wait_for(look, timeout, f"search {search_id} to reach {states}", every=0.5)


