"""Ray Jobs, thinly: submit a search's run, read its status, exit code and log, stop it.

The job SDK's records live in the Ray head and vanish when it restarts; a job the head no
longer knows is reported as ``None`` (the reconciler resubmits it). A head that does not
answer, or answers with a server error (a new head whose job agent is not up yet: "No available
agent to submit job, please try again later"), raises :class:`ClusterUnavailable`, so a pass of
the reconciler changes nothing and the next pass tries again.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

import requests
from ray.exceptions import AuthenticationError
from ray.job_submission import JobStatus, JobSubmissionClient

from soup_search.errors import SoupSearchError


class ClusterUnavailable(SoupSearchError):
    """The Ray job server did not answer, or is not ready yet."""


#: how the job SDK words a server-side failure (it raises RuntimeError for every non-200 answer)
_SERVER_ERROR = re.compile(r"status code 5\d\d")


@dataclass(frozen=True)
class JobState:
    status: str  # PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED
    message: str
    exit_code: int | None

    @property
    def done(self) -> bool:
        return JobStatus(self.status).is_terminal()


class Jobs:
    """One Ray cluster's job server (``http://host:8265``)."""

    def __init__(self, address: str):
        self.address = address
        self._client: JobSubmissionClient | None = None

    @property
    def client(self) -> JobSubmissionClient:
        if self._client is None:
            try:
                self._client = JobSubmissionClient(self.address)
            except AuthenticationError:
                raise ClusterUnavailable(f"the Ray job server at {self.address} refused this service's token; "
                                         "set RAY_AUTH_MODE=token and the cluster's token (~/.ray/auth_token)") from None
            except (ConnectionError, requests.RequestException, RuntimeError) as exc:
                raise ClusterUnavailable(f"the Ray job server at {self.address} does not answer ({exc})") from None
        return self._client

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except requests.RequestException as exc:
            self._client = None
            raise ClusterUnavailable(f"the Ray job server at {self.address} does not answer ({exc})") from None
        except RuntimeError as exc:
            if _SERVER_ERROR.search(str(exc)):  # a 4xx (such as 404: an unknown job) is the caller's to read
                raise ClusterUnavailable(f"the Ray job server at {self.address} is not ready ({exc})") from None
            raise

    def submit(self, job_id: str, argv: list[str], env: dict[str, str] | None = None) -> str:
        """Submit ``argv`` as job ``job_id``; ``env`` goes to the entrypoint's process only (through
        ``env``), not to the job's runtime env, which the run's own ``ray.init`` must not conflict with."""
        prefix = ["env", *(f"{k}={v}" for k, v in (env or {}).items())] if env else []
        return self._call(self.client.submit_job, entrypoint=shlex.join(prefix + argv), submission_id=job_id)

    def state(self, job_id: str) -> JobState | None:
        """The job's state, or None when the cluster does not know it (any more)."""
        try:
            info = self._call(self.client.get_job_info, job_id)
        except RuntimeError as exc:
            if "404" in str(exc):
                return None
            raise
        return JobState(status=str(info.status.value if hasattr(info.status, "value") else info.status),
                        message=info.message or "", exit_code=info.driver_exit_code)

    def logs(self, job_id: str) -> str | None:
        try:
            return self._call(self.client.get_job_logs, job_id)
        except RuntimeError:
            return None

    def stop(self, job_id: str) -> None:
        try:
            self._call(self.client.stop_job, job_id)
        except RuntimeError:
            pass  # already gone: nothing to stop
