"""``soup-search bench startup``."""

from __future__ import annotations

from pathlib import Path

import typer

from soup_search.cli.bench.app import bench_app


@bench_app.command("startup")
def startup(
    config: Path = typer.Option(None, "--config", help="search config (default: configs/demo.yaml)"),
    repeats: int = typer.Option(3, "--repeats", min=1, help="runs, each on a Ray instance of its own"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Where a run's start-up goes: Ray and the actors, the profile, Tune and the trial processes,
    from Ray's start to the first search trial."""
    import json
    import os

    import ray
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from soup_search.bench.startup import run_startup_bench
    from soup_search.cli.run import demo_config_path
    from soup_search.config import load_config
    from soup_search.io.atomic import atomic_file

    cfg = load_config(config or demo_config_path())
    console = Console()
    stages = ("before_ray", "actors", "profile", "to_first_trial", "startup")
    with console.status("bench startup") as status:
        b = run_startup_bench(cfg, repeats, stop_ray=ray.shutdown,
                              on_repeat=lambda i, s: status.update(f"bench startup: {i + 1}/{repeats} done, "
                                                                   f"start-up {s.startup:.1f} s"))
    table = Table(title=f"bench startup: {cfg.name}, {cfg.resources.scorers} scorers, {cfg.resources.shards} shards, "
                        f"{repeats} runs (seconds)", box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("run")
    for name in ("before Ray", "Ray + actors", "profile", "search start → first trial", "start-up"):
        table.add_column(name, justify="right")
    for i, r in enumerate(b.repeats, 1):
        table.add_row(str(i), *(f"{getattr(r, s):.2f}" for s in stages))
    table.add_row("mean [95% CI]", *(f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in map(b.interval, stages)))
    console.print(table)
    load = os.getloadavg()
    console.print(f"start-up: Ray's start to the first search trial, less the profile's scoring; the first run's "
                  f"process start (imports included) to its first trial: {b.process_to_first_trial:.1f} s; "
                  f"load average {load[0]:.2f} on {os.cpu_count()} CPUs")
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(b.to_json(), fh, indent=2)
