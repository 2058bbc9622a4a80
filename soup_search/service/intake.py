"""A submitted search config, checked as ``soup-search run`` checks it, plus the service's rules.

The body is YAML text or JSON. Every path it names (candidate folders, a score CSV, an
objective's data file) must lie under one of the service's allowed roots; relative paths
resolve against the first root. Paths outside are refused before anything is read, so the
service never opens a file it was not meant to. The service owns where a search's study
lives and which cluster it joins, so ``search.storage`` and ``resources.address`` are refused.
All problems come back together, as in ``load_config``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from soup_search.config import RunConfig, parse_config, read_yaml
from soup_search.errors import ConfigError

#: where the service puts the job's Ray address: the cluster the job itself runs on
JOB_ADDRESS = "auto"


@dataclass(frozen=True)
class Intake:
    """A validated submission: the config as stored (YAML), its parsed form and the body's hash."""

    config: RunConfig
    text: str
    request_hash: str


def read_body(body: bytes, content_type: str | None) -> Any:
    text = body.decode("utf-8", errors="replace")
    if content_type and "json" in content_type:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("request body", [f"not valid JSON at line {exc.lineno}: {exc.msg}"]) from None
    return read_yaml(text, "request body")


def request_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _path_fields(data: dict) -> list[tuple[str, dict | list, str | int]]:
    """(label, container, key) for every file path a config names."""
    found: list[tuple[str, dict | list, str | int]] = []
    cands = data.get("candidates")
    if isinstance(cands, dict) and isinstance(cands.get("paths"), list):
        found += [(f"candidates.paths[{i}]", cands["paths"], i) for i in range(len(cands["paths"]))]
    scores = data.get("scores")
    if isinstance(scores, dict) and "csv" in scores:
        found.append(("scores.csv", scores, "csv"))
    params = (data.get("objective") or {}).get("params") if isinstance(data.get("objective"), dict) else None
    if isinstance(params, dict):
        found += [(f"objective.params.{k}", params, k) for k in ("path", "csv") if k in params]
    return found


def _under(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _confine(data: dict, roots: tuple[Path, ...]) -> list[str]:
    """Make every path absolute under a root (in place); the problems of those outside, which are dropped."""
    problems, dropped = [], []
    for label, container, key in _path_fields(data):
        value = container[key]
        if not isinstance(value, str):
            continue  # the config's own validation names the type problem
        path = Path(value).expanduser()
        path = (path if path.is_absolute() else roots[0] / path).resolve()
        if _under(path, roots):
            container[key] = str(path)
        else:
            problems.append(f"'{label}': {value} is outside the service's allowed roots "
                            f"({', '.join(map(str, roots))}); put the file there or start the service with --allowed-root")
            dropped.append((container, key))
    for container, key in sorted(dropped, key=lambda d: d[1] if isinstance(d[1], int) else 0, reverse=True):
        del container[key]  # never read below: list entries from the end, so indices stay valid
    return problems


def _service_keys(data: dict) -> list[str]:
    problems = []
    if isinstance(data.get("search"), dict) and data["search"].get("storage") is not None:
        problems.append("'search.storage': the service keeps each search's study in its run folder; drop this key")
    if isinstance(data.get("resources"), dict) and data["resources"].get("address") is not None:
        problems.append("'resources.address': the service runs the search on its own Ray cluster; drop this key")
    return problems


def take(body: bytes, content_type: str | None, roots: tuple[Path, ...]) -> Intake:
    """Validate a submitted config; raise one ConfigError listing every problem."""
    data = read_body(body, content_type)
    if not isinstance(data, dict):
        raise ConfigError("request body", ["the top level must be a mapping of keys (candidates, objective, search, ...)"])
    digest = request_hash(data)
    data = copy.deepcopy(data)
    problems = _service_keys(data)
    for section in ("search", "resources"):
        if isinstance(data.get(section), dict):
            data[section].pop("storage" if section == "search" else "address", None)
    problems += _confine(data, roots)
    if data.get("resources") is None:
        data["resources"] = {}
    if isinstance(data["resources"], dict):
        data["resources"]["address"] = JOB_ADDRESS
    cfg = None
    try:
        cfg = parse_config(data, source="config", root=roots[0])
    except ConfigError as exc:
        problems += [p for p in exc.problems if not (problems and p.startswith("'candidates': give"))]
    if problems or cfg is None:
        raise ConfigError("config", problems)
    return Intake(config=cfg, text=yaml.safe_dump(data, sort_keys=False), request_hash=digest)
