"""CLI commands: ``bench`` (performance benchmarks; ``bench merge``)."""

from __future__ import annotations

from pathlib import Path

import typer

bench_app = typer.Typer(help="Benchmarks of the merge and search hot paths.", no_args_is_help=True)


@bench_app.command("merge")
def merge(
    models: int = typer.Option(3, help="Number of generated checkpoints."),
    params: str = typer.Option("100M", help="Parameters per checkpoint (e.g. 100M, 2M)."),
    shards: int = typer.Option(2, help="Shard actors for the in-memory merge."),
    dtype: str = typer.Option("float32", help="float32, bfloat16 or float16."),
    repeats: int = typer.Option(3, help="In-memory merges to time (best is reported)."),
    threads: int = typer.Option(1, help="Torch threads per shard actor."),
    keep: Path | None = typer.Option(None, help="Keep the generated checkpoints in this dir."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Time disk-to-disk and in-memory merging against this machine's memory-copy bandwidth."""
    from rich.console import Console
    from rich.table import Table

    from soup_search.atomic import atomic_file
    from soup_search.bench.merge import check_options, run_bench, to_json
    from soup_search.cluster import start_ray

    n_params = check_options(models, params, shards, dtype, repeats)
    console = Console()
    start_ray()
    with console.status("bench merge") as status:
        r = run_bench(models=models, params=n_params, shards=shards, dtype=dtype,
                      repeats=repeats, keep=keep, num_threads=threads,
                      progress=lambda msg: status.update(msg))
    gb = r.model_bytes / 1e9
    table = Table(title=f"merge: {r.models} × {r.params / 1e6:.1f}M {r.dtype} params "
                        f"({gb:.3f} GB each, {r.tensors} tensors), {r.shards} shards")
    table.add_column("measure")
    table.add_column("time", justify="right")
    table.add_column("GB/s (read+write)", justify="right")
    table.add_row(f"disk-to-disk merge ({r.disk_method})", f"{r.disk_to_disk_s:.3f} s", f"{r.disk_to_disk_gbps:.2f}")
    table.add_row(f"in-memory merge, best of {r.repeats} (median {r.in_memory_median_s:.3f} s)",
                  f"{r.in_memory_s:.3f} s", f"{r.in_memory_gbps:.2f}")
    table.add_row("  of which merge compute in actors", f"{r.actor_merge_s:.3f} s", "")
    table.add_row("memory copy (np.copyto, same actors)", "", f"{r.copy_gbps:.2f}")
    table.add_row("in-memory / copy bandwidth", "", f"{r.ratio:.0%}")
    table.add_row("in-memory merge, CPU time of busiest actor", f"{r.in_memory_cpu_s:.3f} s",
                  f"{r.in_memory_cpu_gbps:.2f}")
    table.add_row("memory copy, CPU time", "", f"{r.copy_cpu_gbps:.2f}")
    table.add_row("in-memory / copy, by CPU time", "", f"{r.ratio_cpu:.0%}")
    console.print(table)
    console.print(f"load average {r.load_avg[0]:.2f} {r.load_avg[1]:.2f} {r.load_avg[2]:.2f} on {r.cpus} CPUs")
    if json_out is not None:
        with atomic_file(json_out) as fh:
            fh.write(to_json(r) + "\n")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(bench_app, name="bench")
