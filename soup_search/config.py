"""The search config: YAML read into frozen pydantic models, every problem reported at once.

``load_config(path)`` validates types and unknown keys (pydantic), then what pydantic
cannot see (files that must exist, registry names, budgets, candidate compatibility),
and raises one :class:`~soup_search.errors.ConfigError` listing every problem — before
any Ray work starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from soup_search.errors import ConfigError, SoupSearchError

SAMPLERS = ("tpe", "cmaes", "gp", "random", "grid")
ZOO_SIZES = ("tiny", "small", "default")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CandidatesConfig(_Frozen):
    """Which checkpoints may go into a soup: the toy zoo's experts and/or checkpoint dirs."""

    zoo: Literal["tiny", "small", "default"] | None = None
    include_base: bool = False
    paths: list[str] = Field(default_factory=list)


class ObjectiveConfig(_Frozen):
    name: str = "toy"
    params: dict[str, Any] = Field(default_factory=dict)


class ScoresConfig(_Frozen):
    """Category scores from a leaderboard CSV instead of profiling the candidates."""

    csv: str
    model_column: str = "Model"
    #: leaderboard row name -> candidate name, where they differ
    rename: dict[str, str] = Field(default_factory=dict)


class AnalysisConfig(_Frozen):
    method: Literal["pearson", "spearman"] = "pearson"
    tau: float = Field(default=0.5, ge=0.0, le=1.0)
    top_k: int = Field(default=2, gt=0)
    grouping: Literal["weak", "cluster"] = "weak"
    categories: list[str] | None = None


class SearchConfig(_Frozen):
    sampler: str = "tpe"
    n_trials: int = 30
    min_weight: float = Field(default=0.05, ge=0.0, lt=1.0)
    seed: int = 0
    per_module: bool = False
    #: Optuna storage URL; default: an SQLite file in the run dir
    storage: str | None = None
    study_name: str | None = None
    #: also evaluate the paper's exhaustive grid, for comparison
    grid: bool = False


class ResourcesConfig(_Frozen):
    address: str | None = None
    num_cpus: int | None = None
    shards: int = 2
    scorers: int = 2
    shard_cpus: float = 0.25
    scorer_cpus: float = 0.5
    backend: Literal["hf", "vllm"] = "hf"
    batch_size: int = 256
    use_gpu: bool | None = None


class RunConfig(_Frozen):
    name: str = "soup"
    candidates: CandidatesConfig
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    scores: ScoresConfig | None = None
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    #: the folder relative paths are resolved against (the YAML file's folder)
    root: str = "."

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.root) / p


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


def _semantic_problems(cfg: RunConfig) -> list[str]:
    problems: list[str] = []
    s, r = cfg.search, cfg.resources
    if s.sampler not in SAMPLERS:
        problems.append(f"'search.sampler': unknown sampler {s.sampler!r}; use one of {', '.join(SAMPLERS)}")
    if s.n_trials <= 0:
        problems.append(f"'search.n_trials' must be > 0, got {s.n_trials}")
    for key in ("shards", "scorers", "batch_size"):
        if getattr(r, key) <= 0:
            problems.append(f"'resources.{key}' must be > 0, got {getattr(r, key)}")
    for key in ("shard_cpus", "scorer_cpus"):
        if getattr(r, key) < 0:
            problems.append(f"'resources.{key}' must be >= 0, got {getattr(r, key)}")
    if r.num_cpus is not None and r.num_cpus <= 0:
        problems.append(f"'resources.num_cpus' must be > 0, got {r.num_cpus}")
    if not cfg.candidates.zoo and not cfg.candidates.paths:
        problems.append("'candidates': give 'zoo: tiny|small|default' or a list of checkpoint 'paths'")
    for i, p in enumerate(cfg.candidates.paths):
        if not cfg.resolve(p).is_dir():
            problems.append(f"'candidates.paths[{i}]': no checkpoint directory at {cfg.resolve(p)}")
    if cfg.scores is not None and not cfg.resolve(cfg.scores.csv).is_file():
        problems.append(f"'scores.csv': file not found: {cfg.resolve(cfg.scores.csv)}")
    problems += _objective_problems(cfg)
    return problems


def _objective_problems(cfg: RunConfig) -> list[str]:
    from objectives import objective_class

    try:
        cls = objective_class(cfg.objective.name)
    except SoupSearchError as exc:
        return [f"'objective.name': {exc}"]
    params = dict(cfg.objective.params)
    for key in ("path", "csv"):
        if isinstance(params.get(key), str):
            params[key] = str(cfg.resolve(params[key]))
    try:
        cls(**params)
    except TypeError as exc:
        return [f"'objective.params': {exc}"]
    except SoupSearchError as exc:
        return [f"'objective': {exc}"]
    return []


def candidate_problems(cfg: RunConfig) -> list[str]:
    """Compatibility of explicit candidate paths (cheap: headers and configs only)."""
    paths = [cfg.resolve(p) for p in cfg.candidates.paths]
    if len(paths) < 2 or not all(p.is_dir() for p in paths):
        return []
    from soup_search.candidates import load_pool

    try:
        load_pool([str(p) for p in paths])
    except SoupSearchError as exc:
        return [f"'candidates': {exc}"]
    return []


def parse_config(data: Any, source: str = "config", root: str | Path = ".") -> RunConfig:
    """Validate a config mapping; raise one ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["the top level must be a mapping of keys (candidates, objective, search, ...)"])
    data = {**data, "root": str(root)}
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _pydantic_problems(exc)) from None
    problems = _semantic_problems(cfg)
    if not problems:
        problems = candidate_problems(cfg)
    if problems:
        raise ConfigError(source, problems)
    return cfg


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML search config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), [f"file not found: {path}; pass the path of a YAML config (see configs/)"])
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(str(path), [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from None
    return parse_config(data, source=str(path), root=path.resolve().parent)
