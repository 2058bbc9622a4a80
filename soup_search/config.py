"""The search config: YAML read into frozen pydantic models, every problem reported at once.

``load_config(path)`` validates types and unknown keys (pydantic), then what pydantic
cannot see (files that must exist, registry names and parameters, budgets and CPUs, candidate
compatibility, a score CSV naming every candidate, a Ray address that answers),
and raises one :class:`~soup_search.errors.ConfigError` listing every problem — before
any Ray work starts.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from soup_search.errors import ConfigError, SoupSearchError
from soup_search.io.remote import basename, is_url, model_folder
from soup_search.objectives import objective_class, parameter_problems

SAMPLERS = ("tpe", "cmaes", "gp", "random", "grid")
#: the SoCE analysis defaults, for every entry point (config, `analyze`, the API)
DEFAULT_TAU = 0.5
DEFAULT_TOP_K = 2
#: every soup mixes at least this many experts (SoCE needs two categories that separate them)
MIN_EXPERTS = 2
#: CPUs each Ray Tune trial reserves (it only dispatches to actors and waits)
TRIAL_CPUS = 0.01
#: seconds to wait for a TCP answer from a cluster address before refusing it
CONNECT_TIMEOUT_S = 5.0


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CandidatesConfig(_Frozen):
    """Which checkpoints may go into a soup: the toy zoo's experts and/or checkpoint dirs."""

    #: a toy zoo size (soup_search.zoo.SIZES and its aliases; written out here so that loading a
    #: config does not import torch; tests/test_config.py checks the two lists agree)
    zoo: Literal["tiny", "tiny-verbose", "small", "default"] | None = None
    #: the seed the toy zoo is trained with (each seed is a different zoo, cached apart)
    zoo_seed: int = Field(default=0, ge=0)
    include_base: bool = False
    #: model directories, or fsspec URLs of model folders (s3://bucket/model, gs://..., https://...)
    paths: list[str] = Field(default_factory=list)
    #: a local folder on every node for URL candidates: their small files and the tensor bytes each
    #: node's shards fetched, keyed by the objects' content (None: tensors are fetched every run)
    cache_dir: str | None = None


class ObjectiveConfig(_Frozen):
    name: str = "toy"
    params: dict[str, Any] = Field(default_factory=dict)
    #: categories kept out of the analysis and the search; scored only by the final report ("transfer")
    held_out_categories: list[str] = Field(default_factory=list)


class ScoresConfig(_Frozen):
    """Category scores from a leaderboard CSV instead of profiling the candidates."""

    csv: str
    model_column: str = "Model"
    #: leaderboard row name -> candidate name, where they differ
    rename: dict[str, str] = Field(default_factory=dict)


class AnalysisConfig(_Frozen):
    method: Literal["pearson", "spearman"] = "pearson"
    tau: float = Field(default=DEFAULT_TAU, ge=0.0, le=1.0)
    top_k: int = Field(default=DEFAULT_TOP_K, gt=0)
    grouping: Literal["weak", "cluster"] = "weak"
    categories: list[str] | None = None


#: search methods of given models: their numbers are the coefficients of a merge of the models the
#: config names (interpolate: search.pair; task_vector: search.target and search.vectors), not the
#: weights of the analysis's experts
INTERPOLATE = "interpolate"
TASK_VECTOR = "task_vector"
GIVEN_MODEL_METHODS = (INTERPOLATE, TASK_VECTOR)


class VectorConfig(_Frozen):
    """A task vector ``θ_plus − θ_minus``: two candidates, fine-tunes of one base."""

    plus: str
    minus: str


class SearchConfig(_Frozen):
    #: TPE: on the demo pool (3 experts, 5 seeds, pruning) it reached the paper grid's best dev
    #: score in every seed within 26 trials, GP in one of five (`soup-search bench search`, README)
    sampler: str = "tpe"
    n_trials: int = 30
    min_weight: float = Field(default=0.0, ge=0.0, lt=1.0)
    seed: int = 0
    per_module: bool = False
    #: Optuna storage URL; default: an SQLite file in the run dir
    storage: str | None = None
    study_name: str | None = None
    #: also evaluate the paper's exhaustive grid, for comparison
    grid: bool = False
    #: how sampled numbers become soup weights: stick breaking (k − 1 numbers, no scale
    #: redundancy) or the old normalisation (k numbers), kept for comparison
    weights: Literal["stick", "normalize"] = "stick"
    #: score the dev split in ``chunks`` stratified chunks and stop clearly worse trials early
    prune: bool = True
    chunks: int = 4
    #: the merge method of a trial's soup: linear (the SoCE soup), or a method with a base model
    #: (task_arithmetic, ties, tsv, wudi) whose per-model weights the search chooses
    method: str = "linear"
    #: the method's fixed parameters (per-model ones apply to every model), e.g. ties: {density: 0.5}
    method_params: dict[str, Any] = Field(default_factory=dict)
    #: the candidate the task vectors are taken against (a zoo's: "base", with include_base)
    base_model: str | None = None
    #: also search the method's global ``lambda`` (the merged task vector's scale) in [low, high]
    lambda_range: tuple[float, float] | None = None
    #: interpolate: the candidates [A, B] of λ·A + (1 − λ)·B
    pair: tuple[str, str] | None = None
    #: task_vector: the candidate the vectors are added to, the vectors, and each α's range
    #: (None: [-1, 2]; it must hold 0 and 1, the baselines)
    target: str | None = None
    vectors: list[VectorConfig] = Field(default_factory=list)
    alpha_range: tuple[float, float] | None = None


class VLLMConfig(_Frozen):
    """The vLLM engine each scorer builds (``resources.backend: vllm``)."""

    #: GPUs per scorer; 1 loads weights in place in the scorer's own process, more goes through a
    #: tmpfs checkpoint that every tensor-parallel worker reads
    tensor_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.8, gt=0.0, le=1.0)
    dtype: str = "auto"
    #: None: the model's own context length
    max_model_len: int | None = Field(default=None, gt=0)
    #: skip CUDA graph capture (faster start, slower decoding)
    enforce_eager: bool = True


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
    #: where Ray Tune keeps its experiment dir: a filesystem path every node sees, or an fsspec
    #: URL (s3://, gs://). Default: the run dir, which only a single-node cluster can use
    storage_path: str | None = None
    #: how shard actors hold their slices: "resident" (copied into RAM or GPU memory once) or
    #: "mmap" (read from the page cache of the checkpoint files: pools larger than RAM)
    shard_memory: Literal["resident", "mmap"] = "resident"
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)

    def cpus_needed(self) -> float:
        """Logical CPUs the actors and the concurrent trials (one per scorer, plus one waiting) reserve."""
        return self.shards * self.shard_cpus + self.scorers * self.scorer_cpus + (self.scorers + 1) * TRIAL_CPUS


class LineageConfig(_Frozen):
    """A child search: it starts from what an earlier run (its parent) learned."""

    #: the parent run's out folder (holds its results.json and state/)
    parent: str
    #: the parent's complete trials that this run's space can express enter the study as done
    carry_over: bool = True
    #: the parent's best trials, newcomers substituted for the experts they beat, evaluated first
    seed_top_k: int = Field(default=3, ge=0)


class RunConfig(_Frozen):
    name: str = "soup"
    candidates: CandidatesConfig
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    scores: ScoresConfig | None = None
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    lineage: LineageConfig | None = None
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


def _search_problems(s: SearchConfig) -> list[str]:
    problems = []
    if s.sampler not in SAMPLERS:
        problems.append(f"'search.sampler': unknown sampler {s.sampler!r}; use one of {', '.join(SAMPLERS)}")
    if s.n_trials <= 0:
        problems.append(f"'search.n_trials' must be > 0, got {s.n_trials}")
    if s.chunks < 1:
        problems.append(f"'search.chunks' must be >= 1, got {s.chunks}")
    elif s.prune and s.chunks < 2:
        problems.append("'search.prune' needs 'search.chunks' >= 2 (a trial is judged after each chunk but "
                        "the last); raise search.chunks or set search.prune: false")
    problems += _method_problems(s)
    if s.min_weight * MIN_EXPERTS >= 1:
        problems.append(f"'search.min_weight' {s.min_weight:g} leaves no room: every soup has at least "
                        f"{MIN_EXPERTS} experts, so it must be below {1 / MIN_EXPERTS:g}")
    return problems


def _method_problems(s: SearchConfig) -> list[str]:
    """What is wrong with ``search.method`` and its settings."""
    if s.method in GIVEN_MODEL_METHODS:
        return _given_model_problems(s)
    misplaced = [(key, INTERPOLATE if key == "pair" else TASK_VECTOR) for key in ("pair", "target", "vectors", "alpha_range")
                 if getattr(s, key)]
    return [f"'search.{key}' is only for search.method {method}; remove it" for key, method in misplaced] + \
        _merge_method_problems(s)


def _given_model_problems(s: SearchConfig) -> list[str]:
    """The settings of a search of given models (interpolate, task_vector); the names are checked
    against the candidates by :func:`_given_model_names_problems`."""
    problems = []
    keys = {INTERPOLATE: ("pair",), TASK_VECTOR: ("target", "vectors", "alpha_range")}
    for method, owned in keys.items():
        problems += [f"'search.{key}' is only for search.method {method}; remove it"
                     for key in owned if method != s.method and getattr(s, key)]
    if s.base_model:
        problems.append(f"'search.base_model' is not used by search.method {s.method} "
                        f"({'it has no base' if s.method == INTERPOLATE else 'its base is search.target'}): remove it")
    for key in ("method_params", "lambda_range"):
        if getattr(s, key):
            problems.append(f"'search.{key}' is not used by search.method {s.method} (it searches "
                            f"{'lambda in [0, 1]' if s.method == INTERPOLATE else 'one alpha per vector'}): remove it")
    if s.min_weight:
        problems.append(f"'search.min_weight' is not used by search.method {s.method}: remove it")
    if s.weights != "stick":
        problems.append(f"'search.weights' is not used by search.method {s.method}: remove it")
    if s.method == INTERPOLATE:
        if s.pair is None:
            problems.append("'search.pair' is required by search.method interpolate: name the two candidates "
                            "[A, B] of lambda·A + (1 − lambda)·B")
        elif s.pair[0] == s.pair[1]:
            problems.append(f"'search.pair' names {s.pair[0]!r} twice; give two different candidates")
        return problems
    if s.per_module:
        problems.append("'search.per_module' is not supported by search.method task_vector (one alpha per vector "
                        "for the whole model): remove it")
    if not s.target:
        problems.append("'search.target' is required by search.method task_vector: name the candidate the "
                        "vectors are added to")
    if not s.vectors:
        problems.append("'search.vectors' is required by search.method task_vector: give one or more "
                        "{plus: A, minus: B} (candidates, fine-tunes of one base)")
    seen = set()
    for i, v in enumerate(s.vectors):
        if v.plus == v.minus:
            problems.append(f"'search.vectors[{i}]': plus and minus are both {v.plus!r}, a zero vector; "
                            "give two different candidates")
        elif (v.plus, v.minus) in seen:
            problems.append(f"'search.vectors[{i}]': {v.plus} − {v.minus} is given twice; remove one")
        seen.add((v.plus, v.minus))
    if s.alpha_range is not None:
        low, high = s.alpha_range
        if not low <= 0 < 1 <= high:
            problems.append(f"'search.alpha_range' must be [low, high] with low <= 0 and high >= 1 (the baselines: "
                            f"the target at alpha 0, each vector at 1), got [{low:g}, {high:g}]")
    return problems


def _merge_method_problems(s: SearchConfig) -> list[str]:
    """What is wrong with a merge method as ``search.method`` (the registry is read lazily: it imports torch)."""
    from soup_search.errors import MergeError
    from soup_search.merge.registry import get_method

    try:
        method = get_method(s.method)
    except MergeError as exc:
        return [f"'search.method': {exc}"]
    if method.whole_model:
        return [f"'search.method' {s.method} merges whole models (forward and backward passes), which the search's "
                "per-tensor shard actors cannot do; merge it alone with `soup-search merge RECIPE.yaml OUT`, or "
                "search with linear, task_arithmetic, ties, tsv or wudi"]
    if method.base == "forbidden" or method.num_models is not None:
        return [f"'search.method' {s.method} merges a fixed set of models, not the experts the search picks; "
                "use a method such as linear, task_arithmetic, ties, tsv or wudi"]
    specs = {p.name: p for p in method.params}
    if "weight" not in specs or specs["weight"].scope != "model":
        return [f"'search.method' {s.method} takes no per-model weight to search; use linear, task_arithmetic, ties, tsv or wudi"]
    problems = []
    if method.base == "required" and not s.base_model:
        problems.append(f"'search.base_model' is required by search.method {s.method} (its task vectors are taken "
                        "against it): name a candidate, e.g. base with candidates.include_base: true")
    if method.base != "required" and s.base_model:
        problems.append(f"'search.base_model' is only for methods with task vectors; search.method {s.method} takes "
                        "none: remove it")
    for key in s.method_params:  # (a per-model parameter given here applies to every model)
        if key == "weight":
            problems.append("'search.method_params.weight': the search chooses the weights; remove it")
        elif key not in specs:
            allowed = ", ".join(sorted(n for n in specs if n != "weight")) or "none"
            problems.append(f"'search.method_params.{key}' is not a parameter of {s.method}; use: {allowed}")
    if s.lambda_range is not None:
        low, high = s.lambda_range
        if "lambda" not in specs:
            problems.append(f"'search.lambda_range': {s.method} has no lambda; remove it")
        elif not 0 <= low < high:
            problems.append(f"'search.lambda_range' must be [low, high] with 0 <= low < high, got [{low:g}, {high:g}]")
        if "lambda" in s.method_params:
            problems.append("'search.method_params.lambda' and 'search.lambda_range' both set lambda; keep one")
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


def candidate_location(cfg: RunConfig, path: str) -> str:
    """A ``candidates.paths`` entry as the run reads it: a URL as is, a path resolved against the config."""
    return path.rstrip("/") if is_url(path) else str(cfg.resolve(path))


def candidate_name(location: str) -> str:
    """The name of the candidate at ``location`` (its folder's name)."""
    return basename(model_folder(location)) if is_url(location) else Path(location).name


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
    """An objective's parameters with its file paths (``path``, ``csv``) resolved against the config."""
    out = dict(params)
    for key in ("path", "csv"):
        if isinstance(out.get(key), str):
            out[key] = str(resolve(out[key]))
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
        categories = tuple(cls(**objective_params(o.params, resolve)).categories)
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
            problems += _search_problems(section)
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
    problems += _base_model_problems(data, resolve)
    problems += _given_model_names_problems(data, resolve)
    if "name" in data and not isinstance(data["name"], str):
        problems.append("'name': must be a string")
    return problems


def _base_model_problems(data: dict, resolve) -> list[str]:
    """``search.base_model`` names a candidate; a method search cannot be a lineage child (yet)."""
    search = data.get("search") if isinstance(data.get("search"), dict) else {}
    cands = data.get("candidates") if isinstance(data.get("candidates"), dict) else {}
    problems = []
    if search.get("method", "linear") != "linear" and data.get("lineage"):
        problems.append(f"'lineage' carries linear soups only; a search.method {search['method']} run cannot be "
                        "a lineage child: remove lineage, or use search.method: linear")
    base = search.get("base_model")
    if not isinstance(base, str) or not base or search.get("method") in GIVEN_MODEL_METHODS:
        return problems  # (a search of given models takes no base_model: _given_model_problems)
    if cands.get("zoo") and base == "base":
        if not cands.get("include_base"):
            problems.append("'search.base_model' base is the zoo's base model: set candidates.include_base: true")
        return problems
    paths = cands.get("paths") if isinstance(cands.get("paths"), list) else []
    names = {candidate_name(p if is_url(p) else str(resolve(p))) for p in paths if isinstance(p, str)}
    if not cands.get("zoo") and base not in names:
        problems.append(f"'search.base_model' {base!r} is not a candidate; name one of: {', '.join(sorted(names)) or '(none)'}")
    return problems


def _candidate_names(cands: dict, resolve) -> set[str] | None:
    """The names of the candidates of a ``candidates`` section (None: a zoo size that does not exist)."""
    from soup_search.errors import ZooError
    from soup_search.zoo import get_spec

    names = set()
    if cands.get("zoo"):
        try:
            spec = get_spec(cands["zoo"])[1]
        except ZooError:
            return None  # reported by the candidates section
        names |= set(spec.candidate_names())
        names |= {"base"} if cands.get("include_base") else set()
    paths = cands.get("paths") if isinstance(cands.get("paths"), list) else []
    return names | {candidate_name(p if is_url(p) else str(resolve(p))) for p in paths if isinstance(p, str)}


def _given_model_names_problems(data: dict, resolve) -> list[str]:
    """The models a search of given models names (search.pair, target, vectors) must be candidates."""
    search = data.get("search") if isinstance(data.get("search"), dict) else {}
    cands = data.get("candidates") if isinstance(data.get("candidates"), dict) else {}
    if search.get("method") not in GIVEN_MODEL_METHODS:
        return []
    try:
        s = SearchConfig.model_validate(search)
    except ValidationError:
        return []  # reported by the search section
    names = _candidate_names(cands, resolve)
    if names is None:
        return []
    named = [("search.pair", n) for n in (s.pair or ()) if s.method == INTERPOLATE]
    if s.method == TASK_VECTOR:
        named += [("search.target", s.target)] if s.target else []
        named += [(f"search.vectors[{i}].{side}", getattr(v, side)) for i, v in enumerate(s.vectors)
                  for side in ("plus", "minus")]
    problems = []
    for key, name in named:
        if name in names:
            continue
        if name == "base" and cands.get("zoo"):
            problems.append(f"'{key}' base is the zoo's base model: set candidates.include_base: true")
        else:
            problems.append(f"'{key}' {name!r} is not a candidate; name one of: {', '.join(sorted(names)) or '(none)'}")
    return list(dict.fromkeys(problems))


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
