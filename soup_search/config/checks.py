"""The problems of every other section and of the whole config: files that must exist, budgets
and CPUs, a Ray address that answers, the objective and its categories, candidate compatibility,
a score CSV naming every candidate. Each section is checked on its own, so one bad section never
hides another's problems."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from soup_search.config.models import (
    CONNECT_TIMEOUT_S, MIN_EXPERTS, AnalysisConfig, CandidatesConfig, LineageConfig, ObjectiveConfig, ResourcesConfig,
    RunConfig, ScoresConfig, SearchConfig, candidate_location, candidate_name,
)
from soup_search.config.search_checks import base_model_problems, given_model_names_problems, search_problems
from soup_search.errors import SoupSearchError
from soup_search.io.remote import is_url
from soup_search.objectives import build_objective, objective_class, parameter_problems

def _pydantic_problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        elif err["type"] == "missing":
            problems.append(f"missing key '{where}'")
        else:
            problems.append(f"'{where}': {err['msg']}")
    return problems


def _analysis_problems(a: AnalysisConfig) -> list[str]:
    if a.categories is not None and len(set(a.categories)) < MIN_EXPERTS:
        return [f"'analysis.categories' names {len(set(a.categories))}; SoCE needs at least {MIN_EXPERTS} "
                "categories: name more, or leave it out for all"]
    return []


def address_problem(address: str) -> str | None:
    """Why a Ray address (``host:port`` or ``ray://host:port``) cannot be used, or None.

    ``auto`` and ``local`` are Ray's own words and are left to Ray; anything else must answer
    a TCP connection within :data:`CONNECT_TIMEOUT_S` seconds.
    """
    if address in ("auto", "local"):
        return None
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        return (f"'resources.address' {address!r} is not host:port or ray://host:port; "
                "give the Ray head's address, or leave it out for a local instance")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        return (f"'resources.address': no Ray cluster answers at {address} "
                f"({exc.strerror or type(exc).__name__}); start the head (ray start --head) "
                "or fix resources.address, or leave it out for a local instance")


def _resources_problems(r: ResourcesConfig) -> list[str]:
    problems = []
    for key in ("shards", "scorers", "batch_size"):
        if getattr(r, key) <= 0:
            problems.append(f"'resources.{key}' must be > 0, got {getattr(r, key)}")
    for key in ("shard_cpus", "scorer_cpus"):
        if getattr(r, key) < 0:
            problems.append(f"'resources.{key}' must be >= 0, got {getattr(r, key)}")
    if r.num_cpus is not None and r.num_cpus <= 0:
        problems.append(f"'resources.num_cpus' must be > 0, got {r.num_cpus}")
    elif r.num_cpus is not None and r.address in (None, "local") and not problems and r.cpus_needed() > r.num_cpus:
        problems.append(f"'resources.num_cpus' {r.num_cpus} is too few: shards, scorers and trials need "
                        f"{r.cpus_needed():g} CPUs; raise num_cpus or lower shards, scorers, shard_cpus or scorer_cpus")
    if r.backend == "vllm" and r.use_gpu is False:
        problems.append("'resources.backend' vllm scores on GPUs but 'resources.use_gpu' is false; "
                        "use backend: hf, or remove use_gpu: false")
    if r.address is not None:
        problem = address_problem(r.address)
        if problem:
            problems.append(problem)
    return problems


def _candidates_problems(c: CandidatesConfig, resolve) -> list[str]:
    problems = []
    if not c.zoo and not c.paths:
        problems.append("'candidates': give 'zoo: tiny|tiny-verbose|small|default' or a list of checkpoint 'paths'")
    for i, p in enumerate(c.paths):
        if not is_url(p) and not resolve(p).is_dir():
            problems.append(f"'candidates.paths[{i}]': no checkpoint directory at {resolve(p)}")
    return problems


def _scores_problems(sc: ScoresConfig | None, resolve) -> list[str]:
    if sc is not None and not resolve(sc.csv).is_file():
        return [f"'scores.csv': file not found: {resolve(sc.csv)}"]
    return []


#: the file of a finished run that a child search reads, and the keys it needs there
RESULTS = "results.json"
PARENT_KEYS = ("config", "analysis", "trials")


def _lineage_problems(lin: LineageConfig, resolve) -> list[str]:
    """The parent run's results.json must exist and be a run's results (read as the run will)."""
    path = resolve(lin.parent) / RESULTS
    fix = "point lineage.parent at the --out folder of a finished run"
    if not path.is_file():
        return [f"'lineage.parent': no {RESULTS} in {resolve(lin.parent)}; {fix}"]
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return [f"'lineage.parent': {path} is unreadable ({exc}); {fix}"]
    missing = [k for k in PARENT_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        return [f"'lineage.parent': {path} lacks {', '.join(missing)}; {fix}"]
    return []


def objective_params(params: dict[str, Any], resolve) -> dict[str, Any]:
    """An objective's parameters with its file paths (``path``, ``csv``, ``include_path``: one or a
    list) resolved against the config."""
    out = dict(params)
    for key in ("path", "csv", "include_path"):
        if isinstance(out.get(key), str):
            out[key] = str(resolve(out[key]))
        elif isinstance(out.get(key), list) and all(isinstance(p, str) for p in out[key]):
            out[key] = [str(resolve(p)) for p in out[key]]
    return out


def _objective_problems(o: ObjectiveConfig, resolve) -> tuple[list[str], tuple[str, ...]]:
    """The objective's problems, and its categories when it could be built."""
    try:
        cls = objective_class(o.name)
    except SoupSearchError as exc:
        return [f"'objective.name': {exc}"], ()
    wrong = parameter_problems(cls, o.params)
    if wrong:
        return [f"'objective.params': {problem}" for problem in wrong], ()
    try:
        categories = tuple(build_objective(o.name, objective_params(o.params, resolve)).categories)
    except TypeError as exc:
        return [f"'objective.params': {exc}"], ()
    except SoupSearchError as exc:
        return [f"'objective': {exc}"], ()
    if len(categories) < MIN_EXPERTS:
        return [f"'objective': {o.name!r} has {len(categories)} category ({', '.join(map(repr, categories))}); "
                f"SoCE needs at least {MIN_EXPERTS} categories: give the data a category column "
                "(category_field) with several values"], categories
    unknown = [c for c in o.held_out_categories if c not in categories]
    if unknown:
        return [f"'objective.held_out_categories': {', '.join(map(repr, unknown))} not among the objective's "
                f"categories; use some of {', '.join(categories)}"], categories
    searched = [c for c in categories if c not in o.held_out_categories]
    if len(searched) < MIN_EXPERTS:
        return [f"'objective.held_out_categories' leaves {len(searched)} category to search; "
                f"hold out fewer so that at least {MIN_EXPERTS} remain"], categories
    return [], tuple(searched)


def _analysis_categories_problems(data: dict, categories: tuple[str, ...]) -> list[str]:
    """``analysis.categories`` that the objective lacks (when it provides the category scores)."""
    wanted = (data.get("analysis") or {}).get("categories")
    if not categories or data.get("scores") or not isinstance(wanted, list):
        return []
    unknown = [c for c in wanted if c not in categories]
    if not unknown:
        return []
    return [f"'analysis.categories': {', '.join(map(repr, unknown))} not among the objective's categories; "
            f"use some of {', '.join(categories)}"]


SECTIONS: dict[str, type[BaseModel]] = {
    "candidates": CandidatesConfig, "objective": ObjectiveConfig, "scores": ScoresConfig,
    "analysis": AnalysisConfig, "search": SearchConfig, "resources": ResourcesConfig,
    "lineage": LineageConfig,
}


def _section_problems(data: dict, root: Path) -> list[str]:
    """Each section validated on its own, so one bad section never hides another's problems."""
    def resolve(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else root / q

    problems = [f"unknown key '{k}'" for k in data if k not in SECTIONS and k != "name"]
    objective_categories: tuple[str, ...] = ()
    if "candidates" not in data:
        problems.append("missing key 'candidates'")
    for key, model in SECTIONS.items():
        if key not in data or (key in ("scores", "lineage") and data[key] is None):
            continue
        try:
            section = model.model_validate(data[key] if data[key] is not None else {})
        except ValidationError as exc:
            problems += [p.replace("'", f"'{key}.", 1) for p in _pydantic_problems(exc)]
            continue
        if key == "search":
            problems += search_problems(section)
        elif key == "analysis":
            problems += _analysis_problems(section)
        elif key == "resources":
            problems += _resources_problems(section)
        elif key == "candidates":
            problems += _candidates_problems(section, resolve)
        elif key == "scores":
            problems += _scores_problems(section, resolve)
        elif key == "lineage":
            problems += _lineage_problems(section, resolve)
        elif key == "objective":
            found, objective_categories = _objective_problems(section, resolve)
            problems += found
    if "objective" not in data and isinstance((data.get("analysis") or {}).get("categories"), list):
        objective_categories = _objective_problems(ObjectiveConfig(), resolve)[1]  # the default objective
    problems += _analysis_categories_problems(data, objective_categories)
    problems += base_model_problems(data, resolve)
    problems += given_model_names_problems(data, resolve)
    if "name" in data and not isinstance(data["name"], str):
        problems.append("'name': must be a string")
    return problems


def candidate_problems(cfg: RunConfig) -> list[str]:
    """Compatibility of explicit candidate paths (cheap: headers and configs only; a URL is
    checked by reading its headers, config.json and tokenizer files)."""
    locations = [candidate_location(cfg, p) for p in cfg.candidates.paths]
    if not all(is_url(p) or Path(p).is_dir() for p in locations):
        return []  # reported by _candidates_problems
    if len(locations) < 2 and not any(is_url(p) for p in locations):
        return []
    from soup_search.candidates import load_candidates

    try:
        load_candidates(locations, cache_dir=candidates_cache_dir(cfg))
    except SoupSearchError as exc:
        return [f"'candidates': {exc}"]
    return []


def candidates_cache_dir(cfg: RunConfig) -> Path | None:
    """``candidates.cache_dir`` resolved against the config's folder (None when not set)."""
    return cfg.resolve(cfg.candidates.cache_dir) if cfg.candidates.cache_dir else None


def score_table_problems(cfg: RunConfig) -> list[str]:
    """The ``scores:`` CSV read as the run will read it, and every candidate path found among its rows."""
    sc = cfg.scores
    if sc is None:
        return []
    from soup_search.analysis.table import read_score_table

    csv = cfg.resolve(sc.csv)
    try:
        table = read_score_table(csv, model_column=sc.model_column, categories=cfg.analysis.categories)
    except SoupSearchError as exc:
        return [f"'scores.csv': {exc}"]
    names = [candidate_name(candidate_location(cfg, p)) for p in cfg.candidates.paths]
    rows = [sc.rename.get(m, m) for m in table.index]
    missing = [name for name in names if name not in rows]
    if not missing:
        return []
    unused = [m for m in table.index if m not in sc.rename and m not in names]
    example = f" (e.g. {unused[0]!r}: {missing[0]!r})" if unused else ""
    return [f"'scores': candidates {', '.join(map(repr, missing))} are not rows of {csv} (column "
            f"{sc.model_column!r} holds {', '.join(map(repr, list(table.index)[:5]))}"
            f"{', ...' if len(table) > 5 else ''}); map its names to candidate names with scores.rename{example}"]

