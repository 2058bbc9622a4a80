"""``soup-search bench scoring``."""

from __future__ import annotations

from pathlib import Path

import typer

from soup_search.cli.bench.app import bench_app


@bench_app.command("scoring")
def scoring(
    size: str = typer.Option("tiny", "--size", help="zoo size (trained here on first use)"),
    choices: str = typer.Option("2,4", "--choices", help="comma-separated numbers of choices, one mode each"),
    repeats: int = typer.Option(3, "--repeats", min=1, help="timings per model and mode"),
    n_dev: int = typer.Option(100, "--n-dev", min=1, help="dev examples per toy category"),
    threads: int = typer.Option(1, "--threads", min=1, help="torch threads of the scorer"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Multiple-choice scoring (log-likelihood of each choice) against greedy generation on the zoo's
    dev split: examples per second with 95% CIs, tokens fed per example, and the paired speed-up."""
    import json
    import os

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from transformers.utils import logging as hf_logging

    from soup_search.bench.scoring import run_scoring_bench
    from soup_search.errors import ConfigError
    from soup_search.io.atomic import atomic_file

    try:
        counts = [int(c) for c in choices.split(",") if c.strip()]
    except ValueError:
        counts = []
    if not counts or any(c < 2 for c in counts):
        raise ConfigError("bench scoring", [f"--choices {choices!r}: give comma-separated whole numbers >= 2, e.g. 2,4"])
    console = Console()
    hf_logging.disable_progress_bar()
    with console.status("bench scoring") as status:
        b = run_scoring_bench(size, counts, repeats, n_dev, threads, progress=lambda msg: status.update(msg))
    table = Table(title=f"bench scoring: the {size} zoo's {len(b.models)} models on the toy dev split, "
                        f"{threads} torch thread(s), {repeats} repeats", box=box.SIMPLE_HEAD, padding=(0, 1))
    for name in ("mode", "n", "ex/s [95% CI]", "tok/ex", "acc", "vs generate"):
        table.add_column(name, justify="left" if name == "mode" else "right", no_wrap=True)
    for m in b.modes:
        table.add_row(m.mode, str(m.examples), f"{m.examples_per_s:.0f} [{m.ci_low:.0f},{m.ci_high:.0f}]",
                      f"{m.tokens_fed_per_example:.1f}", f"{m.accuracy:.3f}",
                      "—" if m.speedup is None else f"{m.speedup:.2f}x [{m.speedup_ci[0]:.2f},{m.speedup_ci[1]:.2f}]")
    console.print(table)
    load = os.getloadavg()
    console.print(f"generate: greedy answers; choices N: the answer among N, by summed log-likelihood; n: dev "
                  "examples; tok/ex: tokens the model reads per example; acc: mean accuracy over the models; vs "
                  "generate: the speed-up [95% CI]. CIs: t over "
                  f"the {len(b.models) * repeats} (model, repeat) timings; the speed-up is paired per timing. "
                  f"{b.seconds:.0f} s in all; load average {load[0]:.2f} on {os.cpu_count()} CPUs")
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(b.to_json() | {"load_avg": load}, fh, indent=2)
