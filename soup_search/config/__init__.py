"""The search config: YAML read into frozen pydantic models, every problem reported at once.

``load_config(path)`` validates types and unknown keys (pydantic), then what pydantic
cannot see (files that must exist, registry names and parameters, budgets and CPUs, candidate
compatibility, a score CSV naming every candidate, a Ray address that answers),
and raises one :class:`~soup_search.errors.ConfigError` listing every problem — before
any Ray work starts.

The package: :mod:`~soup_search.config.models` (the sections), :mod:`~soup_search.config.checks`
and :mod:`~soup_search.config.search_checks` (what pydantic cannot see), and here the entry points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from soup_search.config.checks import (
    RESULTS, _pydantic_problems, _section_problems, address_problem, candidate_problems, candidates_cache_dir,
    objective_params, score_table_problems,
)
from soup_search.config.models import (
    CONNECT_TIMEOUT_S, DEFAULT_TAU, DEFAULT_TOP_K, GIVEN_MODEL_METHODS, INTERPOLATE, MIN_EXPERTS, SAMPLERS,
    TASK_VECTOR, TRIAL_CPUS, AnalysisConfig, CandidatesConfig, LineageConfig, ObjectiveConfig, ResourcesConfig,
    RunConfig, ScoresConfig, SearchConfig, VectorConfig, VLLMConfig, candidate_location, candidate_name,
)
from soup_search.errors import ConfigError

__all__ = [
    "CONNECT_TIMEOUT_S", "DEFAULT_TAU", "DEFAULT_TOP_K", "GIVEN_MODEL_METHODS", "INTERPOLATE", "MIN_EXPERTS",
    "RESULTS", "SAMPLERS", "TASK_VECTOR", "TRIAL_CPUS", "AnalysisConfig", "CandidatesConfig", "LineageConfig",
    "ObjectiveConfig", "ResourcesConfig", "RunConfig", "ScoresConfig", "SearchConfig", "VLLMConfig",
    "VectorConfig", "_pydantic_problems", "address_problem", "candidate_location", "candidate_name",
    "candidate_problems", "candidates_cache_dir", "load_config", "objective_params", "parse_config",
    "read_yaml", "score_table_problems",
]

def parse_config(data: Any, source: str = "config", root: str | Path = ".") -> RunConfig:
    """Validate a config mapping; raise one ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["the top level must be a mapping of keys (candidates, objective, search, ...)"])
    problems = _section_problems(data, Path(root))
    if not problems:
        try:
            cfg = RunConfig.model_validate({**data, "root": str(root)})
        except ValidationError as exc:
            problems = _pydantic_problems(exc)
        else:
            problems = candidate_problems(cfg) + score_table_problems(cfg)
    if problems:
        raise ConfigError(source, problems)
    return cfg


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML search config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), [f"file not found: {path}; pass the path of a YAML config (see configs/)"])
    return parse_config(read_yaml(path.read_text(), str(path)), source=str(path), root=path.resolve().parent)


def read_yaml(text: str, source: str) -> Any:
    """YAML text as data; a syntax error is one ConfigError naming its line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(source, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from None

