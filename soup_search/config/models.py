"""The config's sections as frozen pydantic models (types, defaults, unknown keys), and how a
candidate path is located and named. What pydantic cannot see is checked in
:mod:`soup_search.config.checks` and :mod:`soup_search.config.search_checks`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from soup_search.io.remote import basename, is_url, model_folder

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
        """Logical CPUs the actors and the concurrent trials (one per scorer) reserve."""
        return self.shards * self.shard_cpus + self.scorers * (self.scorer_cpus + TRIAL_CPUS)


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


def candidate_location(cfg: RunConfig, path: str) -> str:
    """A ``candidates.paths`` entry as the run reads it: a URL as is, a path resolved against the config."""
    return path.rstrip("/") if is_url(path) else str(cfg.resolve(path))


def candidate_name(location: str) -> str:
    """The name of the candidate at ``location`` (its folder's name)."""
    return basename(model_folder(location)) if is_url(location) else Path(location).name

