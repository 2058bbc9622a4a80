"""``soup-search bench merge``: how fast are soups made, from disk and in memory, and how does it scale?

For each model size in ``params``: write ``models`` random Llama-shaped checkpoints →
(a) disk-to-disk merge (:func:`merge_to_disk`: read every input once, write the soup) →
then for each shard count in ``shards`` and each shard memory mode in ``memory``
(resident copies or memory-mapped files): start a shard group (timed: loading or mapping),
(b) in-memory linear soups on its actors, timed around ``ray.get(group.merge(recipe))``
with new weights each repeat (so the cache never hits; the object-store put is part of
the time) → (c) the memory-copy bandwidth of the same actors (``np.copyto``, concurrently)
→ the ratio (b)/(c). One :class:`MergeRow` per (params, shards, memory). Bandwidths count
bytes read plus bytes written. The checkpoints were just written, so a mapped shard reads
them from a warm page cache.

:func:`versus_mergekit` (``--vs-mergekit``) instead times whole processes: ``soup-search
merge`` and ``mergekit-yaml`` on the same linear recipe, alternately, ``repeats`` times each.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from soup_search.candidates import load_candidates
from soup_search.errors import ConfigError
from soup_search.merge import MergeRecipe
from soup_search.merge.stream import merge_to_disk

UNITS = {"K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9}
LAYERS = 8


@dataclass(frozen=True)
class MergeRow:
    """In-memory merging of one model size on one shard group (one row of the table)."""

    params: int
    shards: int
    memory: str  # "resident" or "mmap"
    model_bytes: int
    tensors: int
    load_s: float  # starting the shard group: actors copy (resident) or map (mmap) their tensors
    merge_s: float  # one soup, best of the repeats (wall, around ray.get)
    merge_median_s: float
    gbps: float  # bytes read+written / merge_s
    actor_merge_s: float  # compute only, inside the actors (slowest shard), best repeat
    cpu_s: float  # CPU seconds of the busiest actor per merge (merge + put), best repeat
    cpu_gbps: float  # bytes read+written / cpu_s: the figure that load does not skew
    copy_gbps: float  # memory copy of the same actors, all at once (wall)
    copy_cpu_gbps: float
    ratio: float  # gbps / copy_gbps
    object_store_bytes: int  # the soup put into the object store per merge (model bytes in the output dtype)
    resident_bytes_per_shard: int  # largest shard's copies of the candidates (0 when mapped)


@dataclass(frozen=True)
class DiskMerge:
    """The disk-to-disk merge of one model size (:func:`merge_to_disk`)."""

    params: int
    model_bytes: int
    seconds: float
    gbps: float  # bytes read+written / seconds


@dataclass(frozen=True)
class MergeBench:
    models: int
    dtype: str
    repeats: int
    disk_to_disk: list[DiskMerge]  # one per model size
    rows: list[MergeRow]  # one per (params, shards, memory)
    load_avg: tuple[float, float, float]
    cpus: int


def parse_params(text: str | int) -> int:
    """``"100M"`` → 100_000_000; plain integers pass."""
    text = str(text).strip().upper()
    try:
        value = int(float(text[:-1]) * UNITS[text[-1]]) if text and text[-1] in UNITS else int(float(text))
    except ValueError:
        raise ConfigError("bench merge", [f"--params {text!r} is not a parameter count; use e.g. 100M, 2M or 500000"]) from None
    if value < 10_000:
        raise ConfigError("bench merge", [f"--params {value} is too small; use at least 10K"])
    return value


def split_list(text: str | int) -> list[str]:
    """``"1,2, 4"`` → ``["1", "2", "4"]``; one value is a list of one."""
    return [part.strip() for part in str(text).split(",") if part.strip()]


def check_options(models: int, params: str | int, shards: str | int, dtype: str, repeats: int,
                  memory: str = "resident,mmap") -> tuple[list[int], list[int], list[str]]:
    """All problems of the options in one ConfigError (before any Ray work).

    ``params``, ``shards`` and ``memory`` are one value or a comma list; returns them as lists
    (parameter counts, shard counts, memory modes), duplicates dropped, in the order given.
    """
    from soup_search.engine.shard import MEMORY_MODES

    problems = []
    counts = []
    for text in split_list(params) or [""]:
        try:
            counts.append(parse_params(text))
        except ConfigError as err:
            problems += err.problems
    shard_counts = []
    for text in split_list(shards):
        if not text.isdigit() or int(text) < 1:
            problems.append(f"--shards {text}: use whole numbers of at least 1, e.g. 1,2,4,8")
        else:
            shard_counts.append(int(text))
    if not split_list(shards):
        problems.append("--shards is empty: use e.g. 1,2,4,8")
    modes = split_list(memory)
    if not modes or [m for m in modes if m not in MEMORY_MODES]:
        problems.append(f"--memory {memory}: use resident, mmap or both (resident,mmap)")
    if models < 2:
        problems.append(f"--models {models}: a soup needs at least 2 models")
    if dtype not in ("float32", "bfloat16", "float16"):
        problems.append(f"--dtype {dtype}: use float32, bfloat16 or float16")
    if repeats < 1:
        problems.append(f"--repeats {repeats}: use at least 1")
    if problems:
        raise ConfigError("bench merge", problems)
    return list(dict.fromkeys(counts)), list(dict.fromkeys(shard_counts)), list(dict.fromkeys(modes))


def llama_layout(params: int) -> tuple[dict, list[tuple[str, tuple[int, ...]]]]:
    """A Llama config and its ``(name, shape)`` list with about ``params`` parameters.

    8 layers, vocab = 4 × hidden, MLP = 8/3 × hidden (rounded to 32): ~104·hidden² params.
    """
    hidden = max(32, int(round(math.sqrt(params / 104) / 32)) * 32)
    inter, vocab = max(32, int(round(hidden * 8 / 3 / 32)) * 32), 4 * hidden
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
        "intermediate_size": inter, "num_hidden_layers": LAYERS, "num_attention_heads": hidden // 32,
        "num_key_value_heads": hidden // 32, "vocab_size": vocab, "max_position_embeddings": 256,
        "rms_norm_eps": 1e-6, "tie_word_embeddings": False, "hidden_act": "silu",
    }
    shapes = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes += [(p + f"self_attn.{x}_proj.weight", (hidden, hidden)) for x in "qkvo"]
        shapes += [(p + "mlp.gate_proj.weight", (inter, hidden)), (p + "mlp.up_proj.weight", (inter, hidden)),
                   (p + "mlp.down_proj.weight", (hidden, inter)),
                   (p + "input_layernorm.weight", (hidden,)), (p + "post_attention_layernorm.weight", (hidden,))]
    shapes += [("model.norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]
    return config, shapes


def write_models(root: Path, models: int, params: int, dtype: str) -> list[Path]:
    """``models`` random checkpoints ``root/m{i}`` (safetensors written directly, plus config.json)."""
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    config, shapes = llama_layout(params)
    paths = []
    for m in range(models):
        gen = torch.Generator().manual_seed(m)
        tensors = {name: (torch.randn(shape, generator=gen) * 0.02).to(torch_dtype) for name, shape in shapes}
        path = root / f"m{m}"
        path.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
        (path / "config.json").write_text(json.dumps({**config, "torch_dtype": dtype}))
        paths.append(path)
        del tensors
    return paths


def _weights(rng: np.random.Generator, names) -> dict[str, float]:
    w = rng.dirichlet(np.ones(len(names)))
    return {n: float(x) for n, x in zip(names, w)}


def disk_to_disk(candidates, out_dir: Path) -> float:
    """Seconds to merge the candidate set from its files into ``out_dir`` (:func:`merge_to_disk`)."""
    recipe = MergeRecipe.soup(_weights(np.random.default_rng(0), candidates.names))
    t0 = time.perf_counter()
    merge_to_disk(recipe, out_dir, {c.name: c.path for c in candidates.members}, progress=False)
    return time.perf_counter() - t0


def in_memory(candidates, shards: int, repeats: int, num_threads: int, memory: str = "resident") -> dict:
    """Time ``repeats`` linear soups (new weights each) on shard actors, and their copy bandwidth.

    Returns lists per repeat: ``wall`` (driver, around ``ray.get(candidates.merge(...))``),
    ``compute`` (slowest actor's merge alone), ``cpu`` (most CPU seconds an actor spent on the
    call, merge and object-store put included); ``load_s`` (starting the group),
    ``copy_gbps``/``copy_cpu_gbps`` (all actors copying their share at once), ``out_bytes``
    (one soup's bytes, as put into the object store) and ``resident_bytes`` (largest shard's).
    """
    # Ray only here: the bench is not the Ray edge, and --vs-mergekit does not need it
    import ray

    from soup_search.engine.shard_group import ShardGroup

    rng = np.random.default_rng(1)
    res: dict = {"wall": [], "compute": [], "cpu": []}
    # a quarter CPU per actor (ShardGroup's default), less when that many do not fit the cluster
    num_cpus = min(0.25, ray.cluster_resources().get("CPU", 1) / shards)
    t0 = time.perf_counter()
    with ShardGroup(candidates, n_shards=shards, num_cpus=num_cpus, num_threads=num_threads,
                    cache_size=0, memory=memory) as sp:
        res["load_s"] = time.perf_counter() - t0
        ray.get(sp.merge(MergeRecipe.soup(_weights(rng, candidates.names))))  # warm-up: buffers, object store
        for _ in range(repeats):
            recipe = MergeRecipe.soup(_weights(rng, candidates.names))
            before = sp.stats()
            t0 = time.perf_counter()
            parts = ray.get(sp.merge(recipe))
            res["wall"].append(time.perf_counter() - t0)
            after = sp.stats()
            res["compute"].append(max(s["last_merge_s"] for s in after))
            res["cpu"].append(max(a["cpu_s"] - b["cpu_s"] for a, b in zip(after, before)))
            res["out_bytes"] = sum(a.nbytes for part in parts for a in part.values())
            del parts
        res["resident_bytes"] = max(s["resident_bytes"] for s in sp.stats())
        part_bytes = [sum(candidates.tensor_infos[n].nbytes for n in part) for part in sp.parts]
        # each actor copies an array as large as its share of the output, all at the same time
        times = ray.get([a.copy_probe.remote(b, 5) for a, b in zip(sp.actors, part_bytes)])
        res["copy_gbps"] = sum(2 * b / wall for b, (wall, _) in zip(part_bytes, times)) / 1e9
        res["copy_cpu_gbps"] = sum(2 * b / cpu for b, (_, cpu) in zip(part_bytes, times)) / 1e9
    return res


def merge_row(candidates, models: int, params: int, shards: int, memory: str, repeats: int,
              num_threads: int) -> MergeRow:
    """One row: :func:`in_memory` on ``shards`` actors holding the candidates ``memory``-wise."""
    mem = in_memory(candidates, shards, repeats, num_threads, memory)
    model_bytes = sum(i.nbytes for i in candidates.tensor_infos.values())
    moved = models * model_bytes + mem["out_bytes"]  # read every input once, write the soup once
    # with n shards in parallel, the CPU-time throughput is n shares of bytes in the slowest actor's CPU time
    gbps = moved / min(mem["wall"]) / 1e9
    return MergeRow(
        params=params, shards=shards, memory=memory, model_bytes=model_bytes,
        tensors=len(candidates.tensor_infos), load_s=mem["load_s"], merge_s=min(mem["wall"]),
        merge_median_s=statistics.median(mem["wall"]), gbps=gbps, actor_merge_s=min(mem["compute"]),
        cpu_s=min(mem["cpu"]), cpu_gbps=moved / min(mem["cpu"]) / 1e9, copy_gbps=mem["copy_gbps"],
        copy_cpu_gbps=mem["copy_cpu_gbps"], ratio=gbps / mem["copy_gbps"],
        object_store_bytes=mem["out_bytes"], resident_bytes_per_shard=mem["resident_bytes"],
    )


def run_bench(models: int = 3, params: int | str = "100M", shards: int | str = "1,2,4,8",
              memory: str = "resident,mmap", dtype: str = "float32", repeats: int = 3,
              keep: Path | None = None, num_threads: int = 1, progress=None) -> MergeBench:
    """Run the whole benchmark; ``params``, ``shards`` and ``memory`` are one value or comma lists.

    ``keep`` keeps the generated checkpoints (and the merged ones) there, one folder per size.
    """
    sizes, shard_counts, modes = check_options(models, params, shards, dtype, repeats, memory)
    say = progress or (lambda msg: None)
    disks, rows = [], []
    for size in sizes:
        tmp = None
        if keep is None:
            tmp = tempfile.TemporaryDirectory(prefix="soup-bench-")
            root = Path(tmp.name)
        else:
            root = Path(keep) / f"{size}"
        try:
            say(f"writing {models} checkpoints of {size / 1e6:g}M {dtype} params")
            paths = write_models(root / "models", models, size, dtype)
            candidates = load_candidates(paths)
            model_bytes = sum(i.nbytes for i in candidates.tensor_infos.values())
            say(f"{size / 1e6:g}M: disk-to-disk merge")
            disk_s = disk_to_disk(candidates, root / "merged")
            disks.append(DiskMerge(size, model_bytes, disk_s, (models + 1) * model_bytes / disk_s / 1e9))
            for n in shard_counts:
                for mode in modes:
                    say(f"{size / 1e6:g}M: in-memory merges on {n} shard actors ({mode})")
                    rows.append(merge_row(candidates, models, size, n, mode, repeats, num_threads))
        finally:
            if tmp is not None:
                tmp.cleanup()
    return MergeBench(models=models, dtype=dtype, repeats=repeats, disk_to_disk=disks, rows=rows,
                      load_avg=tuple(round(x, 2) for x in os.getloadavg()), cpus=os.cpu_count() or 0)


def to_json(result: MergeBench | VersusMergekit) -> str:
    return json.dumps(asdict(result), indent=2)


@dataclass(frozen=True)
class VersusMergekit:
    """Wall seconds of whole ``soup-search merge`` and ``mergekit-yaml`` processes, same recipe."""

    models: int
    params: int
    dtype: str
    repeats: int
    model_bytes: int
    soup_search_s: list[float]
    mergekit_s: list[float]
    soup_search_median_s: float
    mergekit_median_s: float
    ratio: float  # soup-search median / mergekit median
    load_avg: tuple[float, float, float]
    cpus: int


def mergekit_command() -> list[str] | None:
    """How to run mergekit-yaml: ``$SOUP_SEARCH_MERGEKIT_YAML``, else ``mergekit-yaml`` next to
    this interpreter or on PATH, else ``python -m mergekit.scripts.run_yaml``; None if none."""
    if os.environ.get("SOUP_SEARCH_MERGEKIT_YAML"):
        return [os.environ["SOUP_SEARCH_MERGEKIT_YAML"]]
    exe = Path(sys.executable).with_name("mergekit-yaml")
    if exe.is_file():
        return [str(exe)]
    if shutil.which("mergekit-yaml"):
        return [shutil.which("mergekit-yaml")]
    if importlib.util.find_spec("mergekit") is not None:
        return [sys.executable, "-m", "mergekit.scripts.run_yaml"]
    return None


def _timed(cmd: Sequence[str], out_dir: Path) -> float:
    """Wall seconds of one process; its output directory is removed afterwards."""
    t0 = time.perf_counter()
    done = subprocess.run(list(cmd), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-1:])
        raise ConfigError("bench merge --vs-mergekit", [f"{cmd[0]} {cmd[1] if len(cmd) > 1 else ''} failed "
                                                        f"(exit {done.returncode}): {tail}"])
    shutil.rmtree(out_dir, ignore_errors=True)
    return seconds


def versus_mergekit(models: int = 3, params: int | str = 100_000_000, dtype: str = "float32", repeats: int = 3,
                    keep: Path | None = None, mergekit: Sequence[str] | None = None,
                    progress=None) -> VersusMergekit:
    """Time ``soup-search merge`` and ``mergekit-yaml`` as subprocesses on one linear recipe of
    ``models`` generated checkpoints, alternately (soup-search first), ``repeats`` times each."""
    sizes = check_options(models, params, 1, dtype, repeats)[0]
    if len(sizes) > 1:
        raise ConfigError("bench merge --vs-mergekit", [f"--params {params}: give one model size"])
    params = sizes[0]
    mergekit = list(mergekit or mergekit_command() or [])
    if not mergekit:
        raise ConfigError("bench merge", ["--vs-mergekit: mergekit-yaml not found; pip install mergekit "
                                          "or set SOUP_SEARCH_MERGEKIT_YAML"])
    say = progress or (lambda msg: None)
    tmp = None if keep is not None else tempfile.TemporaryDirectory(prefix="soup-bench-")
    root = Path(keep) if keep is not None else Path(tmp.name)
    try:
        say(f"writing {models} checkpoints of {params / 1e6:.0f}M {dtype} params")
        paths = write_models(root / "models", models, params, dtype)
        weights = _weights(np.random.default_rng(0), [p.name for p in paths])
        recipe = MergeRecipe.soup({str(p): weights[p.name] for p in paths})
        config = root / "recipe.yaml"
        config.write_text(recipe.to_yaml())
        ours_out, theirs_out = root / "out-soup-search", root / "out-mergekit"
        ours = [sys.executable, "-m", "soup_search", "merge", str(config), str(ours_out), "--quiet"]
        theirs = [*mergekit, str(config), str(theirs_out)]
        times: dict[str, list[float]] = {"ours": [], "theirs": []}
        for i in range(repeats):
            say(f"round {i + 1}/{repeats}: soup-search merge")
            times["ours"].append(_timed(ours, ours_out))
            say(f"round {i + 1}/{repeats}: mergekit-yaml")
            times["theirs"].append(_timed(theirs, theirs_out))
        model_bytes = sum(f.stat().st_size for f in paths[0].glob("*.safetensors"))
    finally:
        if tmp is not None:
            tmp.cleanup()
    ours_s, theirs_s = statistics.median(times["ours"]), statistics.median(times["theirs"])
    return VersusMergekit(
        models=models, params=params, dtype=dtype, repeats=repeats, model_bytes=model_bytes,
        soup_search_s=times["ours"], mergekit_s=times["theirs"], soup_search_median_s=ours_s,
        mergekit_median_s=theirs_s, ratio=ours_s / theirs_s,
        load_avg=tuple(round(x, 2) for x in os.getloadavg()), cpus=os.cpu_count() or 0,
    )
