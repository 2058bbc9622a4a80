"""``soup-search bench merge``."""

from __future__ import annotations

from pathlib import Path

import typer

from soup_search.cli.bench.app import bench_app


@bench_app.command("merge")
def merge(
    models: int = typer.Option(3, help="Number of generated checkpoints."),
    params: str = typer.Option("100M", help="Parameters per checkpoint, one size or a list (e.g. 25M,100M)."),
    shards: str = typer.Option("1,2,4,8", help="Shard actors for the in-memory merge, one count or a list."),
    memory: str = typer.Option("resident,mmap", help="How shards hold the tensors: resident, mmap or both."),
    dtype: str = typer.Option("float32", help="float32, bfloat16 or float16."),
    repeats: int = typer.Option(3, help="In-memory merges to time (best is reported)."),
    threads: int = typer.Option(1, help="Torch threads per shard actor."),
    keep: Path | None = typer.Option(None, help="Keep the generated checkpoints in this dir."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
    vs_mergekit: bool = typer.Option(False, "--vs-mergekit", help="Instead: time whole `soup-search merge` and "
                                     "`mergekit-yaml` processes on one linear recipe, alternately, --repeats each."),
) -> None:
    """Time disk-to-disk and in-memory merging (per model size, shard count and shard memory mode)
    against this machine's memory-copy bandwidth."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from soup_search.bench.merge import check_options, run_bench, to_json, versus_mergekit
    from soup_search.engine.cluster import start_ray
    from soup_search.io.atomic import atomic_file

    check_options(models, params, shards, dtype, repeats, memory)  # every problem, before Ray starts
    console = Console()
    if vs_mergekit:
        with console.status("bench merge --vs-mergekit") as status:
            v = versus_mergekit(models=models, params=params, dtype=dtype, repeats=repeats, keep=keep,
                                progress=lambda msg: status.update(msg))
        table = Table(title=f"whole processes: {v.models} × {v.params / 1e6:.1f}M {v.dtype} params "
                            f"({v.model_bytes / 1e9:.3f} GB each), linear, {v.repeats} alternating rounds")
        table.add_column("command")
        table.add_column("median", justify="right")
        table.add_column("runs", justify="right")
        table.add_row("soup-search merge", f"{v.soup_search_median_s:.2f} s", " ".join(f"{s:.2f}" for s in v.soup_search_s))
        table.add_row("mergekit-yaml", f"{v.mergekit_median_s:.2f} s", " ".join(f"{s:.2f}" for s in v.mergekit_s))
        table.add_row("soup-search / mergekit", f"{v.ratio:.2f}×", "")
        console.print(table)
        console.print(f"load average {v.load_avg[0]:.2f} {v.load_avg[1]:.2f} {v.load_avg[2]:.2f} on {v.cpus} CPUs")
        if json_out is not None:
            with atomic_file(json_out) as fh:
                fh.write(to_json(v) + "\n")
        return
    start_ray()
    with console.status("bench merge") as status:
        r = run_bench(models=models, params=params, shards=shards, memory=memory, dtype=dtype,
                      repeats=repeats, keep=keep, num_threads=threads,
                      progress=lambda msg: status.update(msg))
    for d in r.disk_to_disk:
        console.print(f"disk-to-disk merge (merge_to_disk) of {r.models} × {d.params / 1e6:g}M {r.dtype} params "
                      f"({d.model_bytes / 1e9:.3f} GB each): {d.seconds:.3f} s, {d.gbps:.2f} GB/s read+write")
    table = Table(title=f"in-memory merge of one linear soup of {r.models} {r.dtype} models, best of {r.repeats}",
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)
    for name in ("params", "shards", "memory", "load s", "merge s", "GB/s", "copy", "% copy", "store", "res."):
        table.add_column(name, justify="left" if name == "memory" else "right", no_wrap=True)
    for row in r.rows:
        table.add_row(f"{row.params / 1e6:g}M", str(row.shards), row.memory, f"{row.load_s:.2f}",
                      f"{row.merge_s:.3f}", f"{row.gbps:.2f}", f"{row.copy_gbps:.2f}", f"{row.ratio:.0%}",
                      f"{row.object_store_bytes / 1e9:.3f}", f"{row.resident_bytes_per_shard / 1e9:.3f}")
    console.print(table)
    console.print("load s: starting the shard actors (copying or mapping their tensors); GB/s: bytes read+written / "
                  "merge s; copy: memory-copy GB/s of the same actors; % copy: in-memory / copy bandwidth; "
                  "store: GB put into the object store per trial (one soup); res.: GB of resident copies in the "
                  "largest shard (0 when mapped). Mapped shards read a warm page cache (the checkpoints were just "
                  "written).")
    console.print(f"load average {r.load_avg[0]:.2f} {r.load_avg[1]:.2f} {r.load_avg[2]:.2f} on {r.cpus} CPUs")
    if json_out is not None:
        with atomic_file(json_out) as fh:
            fh.write(to_json(r) + "\n")
