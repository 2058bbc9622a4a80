"""``soup-search bench methods``."""

from __future__ import annotations

from pathlib import Path

import typer

from soup_search.cli.bench.app import bench_app


@bench_app.command("methods")
def methods(
    config: Path = typer.Option(None, "--config", help="config of the pool (default: configs/demo.yaml); its zoo "
                                "gives the base, its analysis the experts"),
    methods: str = typer.Option("linear,ties,tsv,wudi,fda", "--methods", help="comma-separated merge methods"),
    seeds: str = typer.Option("0", "--seeds", help="seeds of the methods that take one (fda): one row per seed"),
    param: list[str] = typer.Option([], "--param", help="METHOD.KEY=VALUE overriding a default (repeatable), "
                                    "e.g. fda.anchor_steps=200"),
    out: Path | None = typer.Option(None, "--out", help="keep the merged checkpoints in this folder "
                                    "(default: a temp folder)"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Merge the pool's SoCE experts with each method (uniform weights, the method's defaults) and
    compare them on the held-out test split: mean with a 95% CI, paired difference with linear,
    merge seconds and peak memory."""
    import json
    import os
    import tempfile

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from transformers.utils import logging as hf_logging

    from soup_search.bench.methods import parse_methods, parse_params, parse_seeds, run_methods_bench
    from soup_search.cli.run import demo_config_path
    from soup_search.config import load_config
    from soup_search.io.atomic import atomic_file, ensure_dir

    names = parse_methods(methods)
    seed_list = parse_seeds(seeds)
    overrides = parse_params(param, names)
    config = config or demo_config_path()
    cfg = load_config(config)
    console = Console()
    hf_logging.disable_progress_bar()  # the scorer's "Loading weights" bars; the status line says what runs
    with tempfile.TemporaryDirectory(prefix="bench-methods-") as tmp, console.status("bench methods") as status:
        work = ensure_dir(out) if out is not None else Path(tmp)
        b = run_methods_bench(cfg, work, names, seed_list, overrides, progress=lambda msg: status.update(msg))
    experts = ", ".join(dict.fromkeys(b.experts.values()))
    changed = f" but {', '.join(param)}" if param else ""
    table = Table(title=f"bench methods: the SoCE experts of {config} ({experts}), uniform weights, each "
                        f"method's defaults{changed}; held-out test split", box=box.SIMPLE_HEAD, padding=(0, 1),
                  collapse_padding=True, pad_edge=False)
    for name in ("method", "test ±95%", "vs linear [95% CI]", "p", "cpu s", "peak MiB", "+MiB"):
        table.add_column(name, justify="left" if name == "method" else "right", no_wrap=True)
    for r in b.rows:
        vs = r.vs_linear
        table.add_row(r.label, f"{r.test_mean:.3f}±{(r.ci_high - r.ci_low) / 2:.3f}",
                      "—" if vs is None else f"{vs.delta:+.3f} [{vs.ci_low:+.3f},{vs.ci_high:+.3f}]",
                      "" if vs is None else f"{vs.p_value:.2g}", f"{r.merge_cpu_s:.2f}", f"{r.peak_mib:.0f}",
                      f"{r.merge_mib:.0f}")
    console.print(table)
    load = os.getloadavg()
    console.print("test: the search objective on the test split (held-out categories apart: 'transfer' in the "
                  "JSON) ± the half-width of its 95% binomial CI; vs linear: the paired difference, stratified bootstrap CI, permutation "
                  "p; cpu s: CPU seconds of merge_to_disk in a fresh process (one torch thread; its wall time, which other "
                  "load inflates, is in the JSON); peak MiB: that process's peak RSS during the "
                  f"merge; +MiB: the merge's increase. {b.seconds:.0f} s in all; load average {load[0]:.2f} on "
                  f"{os.cpu_count()} CPUs")
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(b.to_json() | {"load_avg": load}, fh, indent=2)
