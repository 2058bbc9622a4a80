"""``soup-search bench lineage``."""

from __future__ import annotations

from pathlib import Path

import typer

from soup_search.cli.bench.app import bench_app


@bench_app.command("lineage")
def lineage(
    config: Path = typer.Option(None, "--config", help="base config with zoo candidates (default: configs/tiny.yaml)"),
    seeds: str = typer.Option("0,1,2", "--seeds", help="comma-separated search seeds (one parent and two children each)"),
    n_trials: int = typer.Option(8, "--n-trials", help="search.n_trials of every run (fresh trials)"),
    out: Path | None = typer.Option(None, "--out", help="keep the runs in this folder (default: a temp folder)"),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Fresh trials a child search needs to reach its parent's best dev score, with and without lineage."""
    import json

    from rich.console import Console
    from rich.table import Table

    from soup_search.bench.lineage import run_lineage_bench, to_json
    from soup_search.cli.run import demo_config_path
    from soup_search.cli.ui import RichProgress
    from soup_search.config import load_config
    from soup_search.errors import ConfigError
    from soup_search.io.atomic import atomic_file

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        seed_list = []
    problems = []
    if not seed_list or any(s < 0 for s in seed_list) or len(set(seed_list)) != len(seed_list):
        problems.append(f"--seeds {seeds!r} must be distinct non-negative integers, e.g. 0,1,2")
    if n_trials <= 0:
        problems.append(f"--n-trials must be > 0, got {n_trials}")
    if problems:
        raise ConfigError("bench lineage", problems)
    cfg = load_config(config or demo_config_path().with_name("tiny.yaml"))
    console = Console()
    results = run_lineage_bench(cfg, seed_list, n_trials, out, RichProgress(console))

    def reach(n):
        return "not reached" if n is None else str(n)

    table = Table(title=f"bench lineage: fresh trials until the child reaches the parent's best dev score "
                        f"({n_trials} fresh trials per run; cache hits: fresh trials the score cache answered)")
    for name in ("seed", "newcomer", "parent best", "carried", "seeded", "with: to reach", "with: best",
                 "with: cache hits", "without: to reach", "without: best", "without: cache hits"):
        table.add_column(name, justify="left" if name == "newcomer" else "right")
    for r in results:
        w, wo = r.with_lineage, r.without
        table.add_row(str(r.seed), r.newcomer, f"{r.parent_best:.4f}", f"{w.carried} of {r.parent_trials}",
                      str(w.seeded), reach(w.to_reach), f"{w.best:.4f}", f"{w.cache_hits} of {w.fresh}",
                      reach(wo.to_reach), f"{wo.best:.4f}", f"{wo.cache_hits} of {wo.fresh}")
    console.print(table)
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(to_json(results), fh, indent=2)
