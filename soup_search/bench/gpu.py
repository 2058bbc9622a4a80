"""``soup-search bench gpu``: per candidate soup, the merge on GPU shard actors, the weight push into
the vLLM scorer and the scoring, with scoring's examples per second.

Candidates come from a model config, no hub: ``size`` picks a Llama body (``1B``: Llama-3.2-1B's,
``8B``: Llama-3-8B's, ``tiny``: a toy that runs on CPU in seconds) whose vocabulary is the zoo's
character tokenizer, saved beside each checkpoint; the parameter count reported is that of these
checkpoints (the body's, with a 58-token vocabulary). ``candidates`` random checkpoints (one seed
each) are written as safetensors, tensor by tensor, into ``keep`` or a temp dir removed after.

**The single-GPU plan (the bench's own).** :func:`soup_search.engine.cluster.plan_needs` gives every
vLLM scorer whole GPUs and the shards what the scorers leave: on one GPU, nothing. Here instead the
``shards`` shard actors take ``shard_gpu`` of Ray's GPU each, co-located (``STRICT_PACK``), and the
one scorer takes the rest (``1 - shards * shard_gpu``). vLLM may fill ``gpu_memory_utilization`` of
the GPU's memory; the shards start first and must fit in what it leaves (their candidates' copies
plus the soup, or only the soup with ``shard_memory="mmap"``), which is checked before anything is
written.

Per soup (random Dirichlet weights; one warm-up soup first, not counted), driver wall times:

1. **merge**: ``ShardGroup.merge`` until every shard's result is in Ray's object store (the merge
   on the shards' device, the copy to host and the object-store put);
2. **push**: ``ScorerWorker.load_parts`` on the scorer actor: the object store into vLLM's weights
   (the adapter's check that every parameter was set and its prefix-cache reset included);
3. **score**: ``ScorerWorker.score_chunks`` in one chunk: the whole dev split of the toy objective (greedy,
   at most ``ToyObjective.max_new_tokens`` new tokens per example).

``cpu=True`` runs the same code with no GPU requested (shards merge on CPU, the scorer actor gets
no GPU): a smoke run for CI, with a vLLM that runs on CPU (the test stand-in, ``tests/fake_vllm``).
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from soup_search.candidates import load_candidates
from soup_search.engine.shard import MEMORY_MODES
from soup_search.errors import ClusterError, ConfigError, SoupSearchError
from soup_search.io.dtypes import st_dtype, torch_dtype
from soup_search.io.safetensors_format import DEFAULT_FILE_BYTES, TensorSpec, file_layout, write_streamed_checkpoint
from soup_search.merge import MergeRecipe
from soup_search.objectives.toy import TASKS, ToyObjective
from soup_search.scoring.protocol import ObjectiveSpec
from soup_search.scoring.vllm import import_vllm
from soup_search.zoo.tokenizer import build_char_tokenizer

#: the Llama bodies of ``--size`` (the vocabulary is always the zoo's character tokenizer)
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
    "1B": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8),  # Llama-3.2-1B
    "8B": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8),  # Llama-3-8B
}
DTYPES = ("bfloat16", "float16", "float32")
#: context length of the generated configs (toy prompts and answers are a few dozen tokens)
MAX_POSITIONS = 512
#: GPU memory a CUDA context takes in each shard actor's process, counted in the fit check
CONTEXT_BYTES = 2**29
PHASES = ("merge", "push", "score")


@dataclass(frozen=True)
class GpuBenchOptions:
    size: str = "1B"
    candidates: int = 3
    soups: int = 5
    examples: int = 256  # toy dev examples, rounded up to a multiple of its categories
    dtype: str = "bfloat16"
    shards: int = 2
    shard_gpu: float = 0.1  # of Ray's GPU, per shard actor
    gpu_memory_utilization: float = 0.5  # vLLM's share of the GPU's memory
    shard_memory: str = "resident"
    cpu: bool = False  # no GPU requested: a smoke run of the same code
    keep: Path | None = None

    @property
    def scorer_gpu(self) -> float:
        """The scorer's share of Ray's GPU: what the shards leave (none with ``cpu``)."""
        return 0.0 if self.cpu else round(1.0 - self.shards * self.shard_gpu, 6)

    @property
    def examples_per_category(self) -> int:
        return math.ceil(self.examples / len(TASKS))


@dataclass(frozen=True)
class Machine:
    """What the bench runs on (reported with the figures)."""

    device: str  # "cuda" or "cpu"
    gpu: str
    gpu_bytes: int
    vllm_version: str
    torch_version: str


@dataclass(frozen=True)
class Spread:
    """Median, min and max of one figure over the soups, and every soup's value in order."""

    median: float
    min: float
    max: float
    runs: list[float]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values), list(values))


@dataclass(frozen=True)
class GpuBench:
    size: str
    params: int
    model_bytes: int
    tensors: int
    dtype: str
    candidates: int
    soups: int
    examples: int  # scored per soup
    max_new_tokens: int
    device: str
    gpu: str
    gpu_bytes: int  # its memory (0 with --cpu)
    vllm_version: str
    torch_version: str
    plan: dict  # shards, shard_gpu, scorer_gpu, gpu_memory_utilization, shard_memory, shard_device
    setup_s: dict  # write, shards, scorer, warmup (one soup, all three phases)
    phases: dict[str, Spread]  # seconds per soup: merge, push, score
    examples_per_s: Spread  # of scoring


def check_options(opts: GpuBenchOptions) -> None:
    """Every problem of the options in one ConfigError (before any Ray work)."""
    problems = []
    if opts.size not in SIZES:
        problems.append(f"--size {opts.size}: use one of {', '.join(SIZES)}")
    if opts.candidates < 2:
        problems.append(f"--candidates {opts.candidates}: a soup needs at least 2 candidates")
    if opts.soups < 1:
        problems.append(f"--soups {opts.soups}: use at least 1")
    if opts.examples < 1:
        problems.append(f"--examples {opts.examples}: use at least 1")
    if opts.dtype not in DTYPES:
        problems.append(f"--dtype {opts.dtype}: use {', '.join(DTYPES)}")
    if opts.shards < 1:
        problems.append(f"--shards {opts.shards}: use at least 1")
    if not 0 < opts.shard_gpu < 1:
        problems.append(f"--shard-gpu {opts.shard_gpu:g}: use a share of the GPU above 0 and below 1, e.g. 0.1")
    elif opts.shards >= 1 and opts.shards * opts.shard_gpu >= 1:
        problems.append(f"--shards {opts.shards} × --shard-gpu {opts.shard_gpu:g} leaves the scorer no GPU, so "
                        "use fewer shards or a smaller --shard-gpu")
    if not 0 < opts.gpu_memory_utilization <= 1:
        problems.append(f"--gpu-memory-utilization {opts.gpu_memory_utilization:g}: use a share above 0, at most 1")
    if opts.shard_memory not in MEMORY_MODES:
        problems.append(f"--shard-memory {opts.shard_memory}: use {' or '.join(MEMORY_MODES)}")
    if problems:
        raise ConfigError("bench gpu", problems)


def llama_config(size: str, dtype: str) -> LlamaConfig:
    """The ``size`` body with the zoo's character tokenizer as vocabulary."""
    tok = build_char_tokenizer()
    return LlamaConfig(**SIZES[size], vocab_size=len(tok), max_position_embeddings=MAX_POSITIONS,
                       tie_word_embeddings=False, architectures=["LlamaForCausalLM"], dtype=dtype,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)


def tensor_specs(config: LlamaConfig, dtype: str) -> list[TensorSpec]:
    """The checkpoint's tensors as transformers names and shapes them (a model on the meta device)."""
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    st = st_dtype(getattr(torch, dtype))
    return [TensorSpec(name, tuple(p.shape), st) for name, p in model.named_parameters()]


def fit_problem(opts: GpuBenchOptions, model_bytes: int, gpu_bytes: int) -> str | None:
    """Why the shard actors would not fit in the GPU memory vLLM leaves (one line), or None."""
    copies = opts.candidates if opts.shard_memory == "resident" else 0
    need = (copies + 1) * model_bytes + opts.shards * CONTEXT_BYTES
    room = gpu_bytes * (1 - opts.gpu_memory_utilization)
    if need <= room:
        return None
    return (f"the shard actors need about {need / 2**30:.1f} GiB of GPU memory ({copies} candidate copies and the "
            f"soup) but vLLM's --gpu-memory-utilization {opts.gpu_memory_utilization:g} of {gpu_bytes / 2**30:.0f} "
            f"GiB leaves {room / 2**30:.1f} GiB; pass --shard-memory mmap, fewer --candidates or a lower "
            "--gpu-memory-utilization")


def check_machine(opts: GpuBenchOptions, model_bytes: int) -> Machine:
    """A CUDA GPU (unless ``cpu``), vLLM, and room on the GPU for the shards beside vLLM; one line if not."""
    cuda = not opts.cpu
    if cuda and not torch.cuda.is_available():
        raise SoupSearchError("bench gpu needs a CUDA GPU and torch sees none; run it on a GPU machine, "
                              "or pass --cpu for a smoke run of the same code path")
    vllm, _ = import_vllm(1)  # the adapter's own one-line error where vLLM is missing
    gpu, total = "none (--cpu)", 0
    if cuda:
        props = torch.cuda.get_device_properties(0)
        gpu, total = props.name, int(props.total_memory)
        problem = fit_problem(opts, model_bytes, total)
        if problem:
            raise SoupSearchError(problem)
    return Machine("cuda" if cuda else "cpu", gpu, total, str(vllm.__version__), torch.__version__)


def _random_tensor(spec: TensorSpec, gen: torch.Generator) -> torch.Tensor:
    """Norm weights about 1, matrices about N(0, 0.02²), as a freshly initialised Llama."""
    noise = torch.randn(spec.shape, generator=gen) * 0.02
    return (noise + 1 if len(spec.shape) == 1 else noise).to(torch_dtype(spec.dtype))


def write_candidates(root: Path, config: LlamaConfig, specs: list[TensorSpec], n: int) -> list[Path]:
    """``n`` random checkpoints ``root/c{i}`` (seed ``i``) with the tokenizer files, streamed to disk."""
    files = file_layout(specs, DEFAULT_FILE_BYTES)
    with tempfile.TemporaryDirectory() as tmp:
        build_char_tokenizer().save_pretrained(tmp)
        tokenizer = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
    paths = []
    for i in range(n):
        gen = torch.Generator().manual_seed(i)
        tensors = ((s.name, _random_tensor(s, gen)) for part in files for s in part)
        paths.append(write_streamed_checkpoint(root / f"c{i}", files, tensors, config=config.to_dict(),
                                               extra_files=tokenizer))
    return paths


def _get(refs):
    """``ray.get``, with a soup-search error raised in an actor re-raised as itself (one line)."""
    import ray

    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, SoupSearchError):
            raise err.cause from None
        raise


def _one_soup(group, scorer, spec: ObjectiveSpec, recipe: MergeRecipe, load_id: str) -> tuple[dict, int]:
    """Merge, push and score one soup: (seconds per phase, examples scored)."""
    import ray

    t0 = time.perf_counter()
    refs = group.merge(recipe, cache=False)
    ray.wait(refs, num_returns=len(refs), fetch_local=False)  # in the object store; a failure shows at the push
    t1 = time.perf_counter()
    _get(scorer.load_parts.remote(load_id, *refs))
    t2 = time.perf_counter()
    [result] = _get(scorer.score_chunks.remote(spec, "dev", 1, load_id))
    t3 = time.perf_counter()
    return {"merge": t1 - t0, "push": t2 - t1, "score": t3 - t2}, sum(result.counts.values())


def run_bench(opts: GpuBenchOptions, machine: Machine, config: LlamaConfig, specs: list[TensorSpec],
              progress=None) -> GpuBench:
    """Write the candidates, start the shard group and the scorer, and time ``opts.soups`` soups
    (after one warm-up soup). Ray must be started."""
    import ray

    from soup_search.engine.scorer_actors import ScorerActors
    from soup_search.engine.shard_group import ShardGroup

    say = progress or (lambda msg: None)
    if not opts.cpu and ray.cluster_resources().get("GPU", 0) < 1:
        raise ClusterError("bench gpu: the Ray cluster has no GPU although torch sees one; "
                           "start Ray where CUDA_VISIBLE_DEVICES shows the GPU, or pass --cpu")
    tmp = None if opts.keep is not None else tempfile.mkdtemp(prefix="soup-bench-gpu-")
    root = Path(opts.keep) if opts.keep is not None else Path(tmp)
    setup: dict[str, float] = {}
    try:
        say(f"writing {opts.candidates} random {opts.size} candidates ({opts.dtype})")
        t0 = time.perf_counter()
        candidates = load_candidates(write_candidates(root, config, specs, opts.candidates))
        setup["write"] = time.perf_counter() - t0
        say(f"starting {opts.shards} shard actors")
        t0 = time.perf_counter()
        with ShardGroup(candidates, n_shards=opts.shards, placement="STRICT_PACK", use_gpu=not opts.cpu,
                        num_gpus=0 if opts.cpu else opts.shard_gpu, cache_size=0, memory=opts.shard_memory,
                        timeout_s=600) as group:
            setup["shards"] = time.perf_counter() - t0
            shard_device = group.stats()[0]["device"]
            say("starting the vLLM scorer")
            t0 = time.perf_counter()
            with ScorerActors(candidates.template_dir, n=1, backend="vllm", num_gpus=opts.scorer_gpu,
                              max_restarts=0, vllm={"gpu_memory_utilization": opts.gpu_memory_utilization}) as scorers:
                scorers.wait_ready()
                setup["scorer"] = time.perf_counter() - t0
                scorer = scorers.actors[0]
                spec = ObjectiveSpec.of("toy", {"n_dev": opts.examples_per_category})
                rng = np.random.default_rng(0)

                def soup(i: int) -> tuple[dict, int]:
                    weights = rng.dirichlet(np.ones(len(candidates)))
                    recipe = MergeRecipe.soup({n: float(w) for n, w in zip(candidates.names, weights)})
                    return _one_soup(group, scorer, spec, recipe, f"soup-{i}")

                say("warm-up soup")
                warm, _ = soup(-1)
                setup["warmup"] = sum(warm.values())
                runs = []
                for i in range(opts.soups):
                    say(f"soup {i + 1}/{opts.soups}")
                    runs.append(soup(i))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    examples = runs[0][1]
    return GpuBench(
        size=opts.size, params=sum(math.prod(s.shape) for s in specs), model_bytes=sum(s.nbytes for s in specs),
        tensors=len(specs), dtype=opts.dtype, candidates=opts.candidates, soups=opts.soups, examples=examples,
        max_new_tokens=ToyObjective.max_new_tokens, device=machine.device, gpu=machine.gpu,
        gpu_bytes=machine.gpu_bytes, vllm_version=machine.vllm_version, torch_version=machine.torch_version,
        plan={"shards": opts.shards, "shard_gpu": 0.0 if opts.cpu else opts.shard_gpu,
              "scorer_gpu": opts.scorer_gpu, "gpu_memory_utilization": opts.gpu_memory_utilization,
              "shard_memory": opts.shard_memory, "shard_device": shard_device},
        setup_s=setup,
        phases={p: Spread.of([times[p] for times, _ in runs]) for p in PHASES},
        examples_per_s=Spread.of([n / times["score"] for times, n in runs]),
    )


def to_json(result: GpuBench) -> str:
    return json.dumps(asdict(result), indent=2)
