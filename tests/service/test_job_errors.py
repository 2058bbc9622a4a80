"""How the job server's answers map to the reconciler's errors (no cluster needed: the job SDK's
calls are stood in for by functions that raise what the SDK raises)."""

import pytest

from soup_search.service.jobs import ClusterUnavailable, Jobs

AGENT_NOT_UP = "Request failed with status code 500: No available agent to submit job, please try again later.."


def _raises(exc):
    def call(*args, **kwargs):
        raise exc
    return call


def test_a_job_server_that_is_not_ready_is_unavailable_so_the_search_stays_queued():
    # a new Ray head answers 500 until its job agent is up; serve must not die of it at start
    with pytest.raises(ClusterUnavailable, match="not ready"):
        Jobs("http://127.0.0.1:1")._call(_raises(RuntimeError(AGENT_NOT_UP)))


def test_a_client_error_is_left_to_the_caller():
    jobs = Jobs("http://127.0.0.1:1")
    with pytest.raises(RuntimeError, match="404"):
        jobs._call(_raises(RuntimeError("Request failed with status code 404: Job x does not exist.")))
    assert jobs._call(lambda: "answer") == "answer"
