"""``soup-search bench demo``."""

from __future__ import annotations

from pathlib import Path

import typer

from soup_search.cli.bench.app import bench_app


@bench_app.command("demo")
def demo(
    zoo_seeds: str = typer.Option("0,1,2", "--zoo-seeds", help="comma-separated zoo seeds (one zoo and one demo run each)"),
    config: Path = typer.Option(None, "--config", help="the config to run per seed (default: configs/demo.yaml)"),
    out: Path = typer.Option(Path("runs/bench-demo"), "--out", help="folder of the runs (one per seed)"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Run the demo once per zoo seed; print the best soup's held-out differences with their CIs."""
    import json

    from rich.console import Console
    from rich.table import Table

    from soup_search.bench.demo import MIN_WIN, run_demo_bench, to_json
    from soup_search.cli.run import demo_config_path
    from soup_search.cli.ui import RichProgress
    from soup_search.config import load_config
    from soup_search.errors import ConfigError
    from soup_search.io.atomic import atomic_file, ensure_dir

    try:
        seeds = [int(s) for s in zoo_seeds.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError("bench demo", [f"--zoo-seeds {zoo_seeds!r} must be distinct non-negative integers, e.g. 0,1,2"])
    cfg = load_config(config or demo_config_path())
    if not cfg.candidates.zoo:
        raise ConfigError("bench demo", ["the config takes no zoo candidates (candidates.zoo), so zoo seeds change nothing"])
    ensure_dir(out)
    console = Console()
    results = run_demo_bench(cfg, seeds, out, RichProgress(console))
    table = Table(title=f"bench demo: best soup − row on the held-out test split, 95% paired CI, p "
                        f"(claim: ≥ +{MIN_WIN} with CI > 0 vs best expert and uniform_all; not worse than grid)")
    table.add_column("zoo", justify="right")
    table.add_column("soup", justify="right")
    for title in ("vs best expert", "vs uniform_all", "vs uniform_experts", "vs grid best"):
        table.add_column(title)
    table.add_column("holds")
    table.add_column("time", justify="right")
    for r in results:
        cells = []
        for key in ("best_expert", "uniform_all", "uniform_experts", "grid_best"):
            v = r.versus.get(key)
            cells.append("—" if v is None else
                         f"{v.vs.delta:+.3f} [{v.vs.ci_low:+.3f}, {v.vs.ci_high:+.3f}] p={v.vs.p_value:.2g}")
        table.add_row(str(r.zoo_seed), f"{r.soup_test_mean:.3f}", *cells, "yes" if r.holds() else "NO",
                      f"{r.seconds:.0f} s")
    console.print(table)
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(to_json(results), fh, indent=2)
