"""``soup-search remote`` (and its httpx Client) against a real ``soup-search serve``: a tiny search
submitted, followed to success, fetched and listed; server errors, refused connections and
timeouts as one line with exit 2. One service start for the whole file."""

from __future__ import annotations

import json
import socket

import pytest

from soup_search.errors import SoupSearchError
from soup_search.service.client import Client
from tests.service.conftest import SEARCH_S, Service, free_port, make_token, one_line_error, remote, tiny_config_text

PNG = b"\x89PNG\r\n\x1a\n"
SEARCH_ID = "client-e2e"


# -- no server needed -----------------------------------------------------------------------


def test_refused_connection_is_one_line_naming_the_server_and_the_fix():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    line = one_line_error(remote("list", server=url))
    assert f"cannot reach the service at {url}" in line
    assert "soup-search serve" in line and "--server" in line


def test_missing_token_and_bad_server_url_are_one_line_errors():
    line = one_line_error(remote("list", server=f"http://127.0.0.1:{free_port()}", token=None))
    assert "no API token" in line and "SOUP_SEARCH_TOKEN" in line
    line = one_line_error(remote("status", "x", "--server", "localhost:8000", server="http://127.0.0.1:1"))
    assert "'localhost:8000' is not an http(s) URL" in line


def test_a_server_that_does_not_answer_times_out_in_one_line():
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with Client(url, "t", timeout=0.3) as client, pytest.raises(SoupSearchError) as err:
            client.get("s-1")
    message = str(err.value)
    assert message == f"the service at {url} did not answer within 0.3 s; is soup-search serve running there? " \
                      "check --server or SOUP_SEARCH_SERVER"


def test_fetch_refuses_a_non_empty_folder_before_any_request(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    line = one_line_error(remote("fetch", "s-1", str(tmp_path / "out"), server=f"http://127.0.0.1:{free_port()}"))
    assert "exists and holds files soup-search did not write" in line  # not a connection error: no request made
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mine.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp folder left beside it


# -- one real service for the rest of the file ------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_zoo):
    """(URL, write token) of a started service; stopped, with its Ray head, after the module."""
    svc = Service(tmp_path_factory.mktemp("client") / "service")
    token = make_token(svc.data_dir, "alice", "write")
    try:
        svc.start()
        yield svc.url, token
    finally:
        svc.stop()
        svc.stop_ray()


@pytest.mark.slow
def test_submit_follow_fetch_and_list_a_tiny_search(server, tmp_path):
    url, token = server
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_config_text(n_trials=4, name="client-tiny"))

    done = remote("submit", str(config), "--id", SEARCH_ID, server=url, token=token)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == SEARCH_ID
    assert f"search {SEARCH_ID} is queued" in done.stderr

    again = remote("submit", str(config), "--id", SEARCH_ID, server=url, token=token)  # the same id: one search
    assert again.returncode == 0 and again.stdout.strip() == SEARCH_ID, again.stderr

    followed = remote("status", SEARCH_ID, "--follow", server=url, token=token, timeout=SEARCH_S)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert "succeeded" in followed.stdout and "4/4" in followed.stdout

    out = tmp_path / "fetched"
    done = remote("fetch", SEARCH_ID, str(out), server=url, token=token)
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    assert len(results["comparison"]) >= 2
    assert {"name", "kind", "dev_mean", "test_mean"} <= set(results["comparison"][0])
    assert (out / "report.md").read_text().strip()
    assert "merge_method" in (out / "soup.yaml").read_text()
    assert (out / "logs.txt").is_file()
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert "comparison.png" in plots and len(plots) >= 3
    assert all((out / "plots" / name).read_bytes().startswith(PNG) for name in plots)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fetched")]  # no temp folder left

    line = one_line_error(remote("fetch", SEARCH_ID, str(out), server=url, token=token))
    assert "--force" in line  # an earlier fetch is replaced only when asked
    assert remote("fetch", SEARCH_ID, str(out), "--force", server=url, token=token).returncode == 0

    listed = remote("list", server=url, token=token)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if SEARCH_ID in line)
    assert "client-tiny" in row and "alice" in row and "succeeded" in row and "4/4" in row
    assert SEARCH_ID in remote("list", "--state", "succeeded", server=url, token=token).stdout
    assert SEARCH_ID not in remote("list", "--state", "failed", server=url, token=token).stdout


@pytest.mark.slow
def test_server_errors_are_one_line_with_exit_2(server, tmp_path):
    url, token = server
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ncandidates: {zoo: tiny}\nobjective: {name: nope}\nsearch: {n_trials: 0}\n")
    line = one_line_error(remote("submit", str(bad), server=url, token=token))
    assert line.startswith("error: the service answered 422 Unprocessable Entity: "
                           "'objective.name': unknown objective 'nope'; use one of: ")  # the problems, joined
    assert line.endswith("; 'search.n_trials' must be > 0, got 0")

    line = one_line_error(remote("status", "no-such-search", server=url, token=token))
    assert "404" in line and "no search 'no-such-search'" in line

    line = one_line_error(remote("list", server=url, token="not-a-token"))
    assert "401" in line and "unknown or revoked token" in line

    line = one_line_error(remote("submit", str(tmp_path / "missing.yaml"), server=url, token=token))
    assert "cannot read config" in line and "missing.yaml" in line


@pytest.mark.slow
def test_cancel_resume_and_follow_a_cancelled_search(server, tmp_path):
    url, token = server
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_config_text(n_trials=4, name="client-cancel"))
    search_id = remote("submit", str(config), "--id", "client-cancel", server=url, token=token).stdout.strip()
    assert search_id == "client-cancel"

    done = remote("cancel", search_id, server=url, token=token)
    assert done.returncode == 0 and done.stdout.strip() == f"search {search_id} is cancelled", done.stderr
    line = one_line_error(remote("cancel", search_id, server=url, token=token))
    assert "409" in line and "only queued or running searches can be cancelled" in line

    done = remote("resume", search_id, server=url, token=token)
    assert done.returncode == 0 and done.stdout.strip() == f"search {search_id} is queued", done.stderr
    assert remote("cancel", search_id, server=url, token=token).returncode == 0

    followed = remote("status", search_id, "--follow", server=url, token=token)
    assert followed.returncode == 1, followed.stdout + followed.stderr
    assert f"search {search_id} cancelled: cancelled by request" in followed.stderr
    assert "Traceback" not in followed.stderr
