"""A small synchronous client for the service's API (httpx): what ``soup-search remote`` calls.

It is configured by ``server``/``token`` or the variables :data:`SERVER_ENV` / :data:`TOKEN_ENV`.
Every failure is a one-line :class:`~soup_search.errors.SoupSearchError`: an error the server
answered (``{"error": ..., "problems": [...]}``) names its status and message; a server that
cannot be reached names its URL and what to check.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from soup_search.errors import SoupSearchError
from soup_search.io.atomic import atomic_dir, check_target
from soup_search.service.models import ACTIVE, SUCCEEDED

SERVER_ENV = "SOUP_SEARCH_SERVER"
TOKEN_ENV = "SOUP_SEARCH_TOKEN"
DEFAULT_SERVER = "http://127.0.0.1:8000"
#: seconds one request may take (connect, read) before it is a one-line error
TIMEOUT_S = 30.0
#: seconds between two looks at a followed search
POLL_S = 2.0
#: a fetched search's files: name in the folder → the API path under the search
FILES = {"results.json": "results", "report.md": "report", "soup.yaml": "soup.yaml", "logs.txt": "logs"}


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def server_error(response: httpx.Response) -> SoupSearchError:
    """The server's JSON error as one line: its status, then the message (a 422's problems joined)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    problems = body.get("problems")
    if response.status_code == 422 and isinstance(problems, list) and problems:
        message = "; ".join(map(str, problems))
    else:
        message = str(body.get("error") or response.text or "no details")
    return SoupSearchError(_one_line(f"the service answered {response.status_code} "
                                     f"{response.reason_phrase}: {message}"))


def _text(given: str | Path, what: str) -> str:
    """A :class:`~pathlib.Path` read here, or the text itself."""
    if not isinstance(given, Path):
        return given
    try:
        return given.read_text()
    except OSError as err:
        raise SoupSearchError(f"cannot read {what} {str(given)!r} ({err.strerror or err}); "
                              "give the path of a YAML file") from None


class Client:
    """The service's API over one httpx connection pool; close it (or use it in ``with``)."""

    def __init__(self, server: str | None = None, token: str | None = None, timeout: float = TIMEOUT_S):
        self.server = (server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).rstrip("/")
        parts = urlsplit(self.server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SoupSearchError(f"server {self.server!r} is not an http(s) URL; "
                                  f"give --server or {SERVER_ENV} as http://HOST:PORT")
        token = token or os.environ.get(TOKEN_ENV)
        if not token:
            raise SoupSearchError(f"no API token; pass --token or set {TOKEN_ENV} "
                                  "(the service's admin creates one with soup-search tokens create)")
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.server, timeout=timeout,
                                  headers={"Authorization": f"Bearer {token}"})

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- transport ------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        fix = f"is soup-search serve running there? check --server or {SERVER_ENV}"
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise SoupSearchError(f"the service at {self.server} did not answer within {self.timeout:g} s; "
                                  f"{fix}") from None
        except httpx.TransportError as exc:
            reason = _one_line(str(exc), 200) or type(exc).__name__
            raise SoupSearchError(f"cannot reach the service at {self.server} ({reason}); {fix}") from None
        if response.is_error:
            raise server_error(response)
        return response

    def _json(self, method: str, path: str, **kwargs) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise SoupSearchError(f"{self.server}{path} did not answer JSON; "
                                  "check that --server is a soup-search service") from None

    @staticmethod
    def _path(search_id: str, tail: str = "") -> str:
        return f"/v1/searches/{quote(search_id, safe='')}" + (f"/{tail}" if tail else "")

    # -- searches -------------------------------------------------------------------------

    def submit(self, config: str | Path, id: str | None = None) -> dict:
        """Create a search from a config: a :class:`~pathlib.Path` is read here, a ``str`` is the
        YAML text itself. The same ``id`` and config twice create one search."""
        config = _text(config, "config")
        params = {"id": id} if id is not None else None
        return self._json("POST", "/v1/searches", content=config.encode(), params=params,
                          headers={"Content-Type": "text/yaml"})

    def list(self, state: str | None = None) -> list[dict]:
        """The searches, newest first (``state``: only those in it)."""
        params = {"state": state} if state is not None else None
        return self._json("GET", "/v1/searches", params=params)["searches"]

    def get(self, search_id: str) -> dict:
        return self._json("GET", self._path(search_id))

    def cancel(self, search_id: str) -> dict:
        return self._json("POST", self._path(search_id, "cancel"))

    def resume(self, search_id: str) -> dict:
        return self._json("POST", self._path(search_id, "resume"))

    def follow(self, search_id: str, every: float = POLL_S) -> Iterator[dict]:
        """The search at every look, ``every`` seconds apart, until (and including) a terminal state."""
        while True:
            search = self.get(search_id)
            yield search
            if search["state"] not in ACTIVE:
                return
            time.sleep(every)

    # -- a finished search's artifacts ------------------------------------------------------

    def results(self, search_id: str) -> dict:
        return self._json("GET", self._path(search_id, "results"))

    def report(self, search_id: str) -> str:
        return self._request("GET", self._path(search_id, "report")).text

    def soup_yaml(self, search_id: str) -> str:
        return self._request("GET", self._path(search_id, "soup.yaml")).text

    def logs(self, search_id: str) -> str:
        return self._request("GET", self._path(search_id, "logs")).text

    def plots(self, search_id: str) -> list[str]:
        """The names of the search's plots (``name`` → ``plots/name.png``)."""
        return [p["name"] for p in self._json("GET", self._path(search_id, "plots"))["plots"]]

    def plot(self, search_id: str, name: str) -> bytes:
        return self._request("GET", self._path(search_id, f"plots/{quote(name, safe='')}.png")).content

    def fetch(self, search_id: str, folder: str | os.PathLike, overwrite: bool = False) -> Path:
        """Download a succeeded search's artifacts (:data:`FILES` and ``plots/*.png``) into ``folder``.

        All or nothing: files go to a temp folder that is renamed into place at the end. An
        existing non-empty folder is refused (with ``overwrite``, an earlier fetch is replaced)."""
        target = check_target(folder, overwrite)  # refused before any request
        search = self.get(search_id)
        if search["state"] != SUCCEEDED:
            raise SoupSearchError(f"search {search_id} is {search['state']}; only a succeeded search has "
                                  f"artifacts to fetch (watch it with soup-search remote status {search_id} --follow)")
        with atomic_dir(target, overwrite) as tmp:
            for name, tail in FILES.items():
                (tmp / name).write_bytes(self._request("GET", self._path(search_id, tail)).content)
            (tmp / "plots").mkdir()
            for name in self.plots(search_id):
                if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                    raise SoupSearchError(f"the service named a plot {name!r}, which is not a file name; "
                                          "check that --server is a soup-search service")
                (tmp / "plots" / f"{name}.png").write_bytes(self.plot(search_id, name))
        return target

    # -- watches ------------------------------------------------------------------------------

    def create_watch(self, spec: str | Path) -> dict:
        """Create a watch from its YAML spec (a Path is read here; a str is the text). The answer
        holds the webhook secret, shown only this once."""
        spec = _text(spec, "watch spec")
        return self._json("POST", "/v1/watches", content=spec.encode(), headers={"Content-Type": "text/yaml"})

    def watches(self) -> list[dict]:
        return self._json("GET", "/v1/watches")["watches"]

    def watch(self, watch_id: int) -> dict:
        return self._json("GET", f"/v1/watches/{int(watch_id)}")

    def delete_watch(self, watch_id: int) -> dict:
        return self._json("DELETE", f"/v1/watches/{int(watch_id)}")

    def trigger(self, watch_id: int) -> dict:
        """Tick the watch now; the tick (202). Refused (409) while a tick of it is open."""
        return self._json("POST", f"/v1/watches/{int(watch_id)}/trigger")

    def history(self, watch_id: int) -> list[dict]:
        """The watch's ticks, newest first."""
        return self._json("GET", f"/v1/watches/{int(watch_id)}/history")["ticks"]

    def champion(self, watch_id: int) -> dict:
        return self._json("GET", f"/v1/watches/{int(watch_id)}/champion")

    def deliveries(self, watch_id: int) -> list[dict]:
        return self._json("GET", f"/v1/watches/{int(watch_id)}/deliveries")["deliveries"]
