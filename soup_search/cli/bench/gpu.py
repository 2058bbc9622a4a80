"""``soup-search bench gpu``."""

from __future__ import annotations

from pathlib import Path

import typer

from soup_search.cli.bench.app import bench_app


@bench_app.command("gpu")
def gpu(
    size: str = typer.Option("1B", help="Llama body of the candidates: tiny, 1B (Llama-3.2-1B's) or 8B "
                             "(Llama-3-8B's), with the zoo's character tokenizer as vocabulary."),
    candidates: int = typer.Option(3, help="Random candidate checkpoints (one seed each)."),
    soups: int = typer.Option(5, help="Random soups merged, pushed and scored (after one warm-up soup)."),
    examples: int = typer.Option(256, help="Toy dev examples scored per soup (rounded up to a multiple of its "
                                 "8 categories)."),
    dtype: str = typer.Option("bfloat16", help="bfloat16, float16 or float32."),
    shards: int = typer.Option(2, help="Shard actors merging the soups."),
    shard_gpu: float = typer.Option(0.1, "--shard-gpu", help="Share of the GPU each shard actor takes "
                                    "(co-located); the vLLM scorer takes the rest."),
    gpu_memory_utilization: float = typer.Option(0.5, "--gpu-memory-utilization", help="vLLM's share of the "
                                                 "GPU's memory; the shards must fit in what it leaves."),
    shard_memory: str = typer.Option("resident", "--shard-memory", help="How shards hold the candidates: "
                                     "resident (copies on the GPU) or mmap (the soup alone on the GPU)."),
    cpu: bool = typer.Option(False, "--cpu", help="No GPU requested: a smoke run of the same code path (CI, "
                             "with a vLLM that runs on CPU)."),
    keep: Path | None = typer.Option(None, help="Write the candidates into this dir and keep them."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Time, per candidate soup, the merge on GPU shard actors, the weight push into the vLLM scorer and
    the scoring, on one GPU (Ray local).

    Its own single-GPU plan: a search run gives each vLLM scorer a whole GPU, which on one GPU leaves
    the shards none; here the shard actors take --shard-gpu of the GPU each (co-located) and the
    scorer the rest, with vLLM's --gpu-memory-utilization of its memory."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from soup_search.bench.gpu import (PHASES, GpuBenchOptions, check_machine, check_options, llama_config,
                                       run_bench, tensor_specs, to_json)
    from soup_search.engine.cluster import start_ray
    from soup_search.io.atomic import atomic_file

    opts = GpuBenchOptions(size=size, candidates=candidates, soups=soups, examples=examples, dtype=dtype,
                           shards=shards, shard_gpu=shard_gpu, gpu_memory_utilization=gpu_memory_utilization,
                           shard_memory=shard_memory, cpu=cpu, keep=keep)
    check_options(opts)  # every problem, before Ray starts
    config = llama_config(size, dtype)
    specs = tensor_specs(config, dtype)
    machine = check_machine(opts, sum(s.nbytes for s in specs))
    start_ray()
    console = Console()
    with console.status("bench gpu") as status:
        r = run_bench(opts, machine, config, specs, progress=lambda msg: status.update(msg))
    table = Table(title=f"one candidate soup of {r.candidates} random {r.size} {r.dtype} candidates, "
                        f"seconds over {r.soups} soups (after one warm-up)",
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for name in ("phase", "median s", "min s", "max s", "per soup"):
        table.add_column(name, justify="left" if name == "phase" else "right", no_wrap=name != "per soup")
    what = {"merge": "merge (shards → object store)", "push": "push (→ vLLM weights)",
            "score": f"score ({r.examples} examples)"}
    for phase in PHASES:
        s = r.phases[phase]
        table.add_row(what[phase], f"{s.median:.3f}", f"{s.min:.3f}", f"{s.max:.3f}",
                      " ".join(f"{v:.3f}" for v in s.runs))
    console.print(table)
    e, p = r.examples_per_s, r.plan
    console.print(f"scoring: {e.median:.1f} examples/s (min {e.min:.1f}, max {e.max:.1f}), toy dev split, "
                  f"greedy, at most {r.max_new_tokens} new tokens each")
    memory = f" ({r.gpu_bytes / 2**30:.1f} GiB)" if r.gpu_bytes else ""
    console.print(f"model: {r.params / 1e6:,.2f}M params, {r.model_bytes / 1e6:,.1f} MB ({r.tensors} tensors); "
                  f"GPU: {r.gpu}{memory}; vLLM {r.vllm_version}; torch {r.torch_version}")
    console.print(f"plan: {p['shards']} shard actors × {p['shard_gpu']:g} GPU ({p['shard_memory']}, on "
                  f"{p['shard_device']}), scorer {p['scorer_gpu']:g} GPU, vLLM gpu_memory_utilization "
                  f"{p['gpu_memory_utilization']:g}")
    console.print("setup: " + ", ".join(f"{k} {v:.2f} s" for k, v in r.setup_s.items()))
    if json_out is not None:
        with atomic_file(json_out) as fh:
            fh.write(to_json(r) + "\n")
