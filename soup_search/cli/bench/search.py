"""``soup-search bench search``."""

from __future__ import annotations

from pathlib import Path

import typer

from soup_search.cli.bench.app import bench_app


@bench_app.command("search")
def search(
    config: Path = typer.Option(None, "--config", help="search config (default: configs/demo.yaml)"),
    experts: str = typer.Option("3,5", help="Pool sizes: the k groups whose experts score best, e.g. 3,5."),
    samplers: str = typer.Option("tpe,gp,cmaes,random", help="Samplers to compare."),
    prune: bool | None = typer.Option(None, "--prune/--no-prune", help="Only with / without pruning "
                                      "(default: both, as rows)."),
    weights: str = typer.Option("stick", help="Weight maps to compare: stick, normalize or both (stick,normalize)."),
    seeds: int = typer.Option(5, help="Studies per method (seeds 0..N-1)."),
    budget: int = typer.Option(None, help="Trials per study at most (default: the grid's size)."),
    keep: Path | None = typer.Option(None, help="Keep the bench's studies and scores in this dir."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
) -> None:
    """Dev examples each search needs to reach the paper grid's best dev score, and the per-trial overhead."""
    import json

    from rich.console import Console
    from rich.table import Table

    from soup_search.bench.search import run_search_bench, to_json
    from soup_search.cli.run import demo_config_path
    from soup_search.cli.ui import RichProgress
    from soup_search.config import SAMPLERS, load_config
    from soup_search.errors import ConfigError
    from soup_search.io.atomic import atomic_file
    from soup_search.search.space import WEIGHT_MAPS

    sizes = [s.strip() for s in experts.split(",") if s.strip()]
    names = [s.strip() for s in samplers.split(",") if s.strip()]
    maps = [s.strip() for s in weights.split(",") if s.strip()]
    problems = []
    if seeds <= 0 or (budget is not None and budget <= 0):
        problems.append("--seeds and --budget must be > 0")
    if not sizes or not all(s.isdigit() and int(s) >= 2 for s in sizes):
        problems.append(f"--experts {experts!r}: give pool sizes of 2 or more, e.g. 3,5")
    if not names or [n for n in names if n not in SAMPLERS or n == "grid"]:
        problems.append(f"--samplers {samplers!r}: use some of {', '.join(n for n in SAMPLERS if n != 'grid')}")
    if not maps or [m for m in maps if m not in WEIGHT_MAPS]:
        problems.append(f"--weights {weights!r}: use some of {', '.join(WEIGHT_MAPS)}")
    if problems:
        raise ConfigError("bench search", problems)
    cfg = load_config(config or demo_config_path())
    console = Console()
    r = run_search_bench(cfg, RichProgress(console), seeds=range(seeds), experts=[int(s) for s in sizes],
                         samplers=names, prunes=[True, False] if prune is None else [prune], weights=maps,
                         budget=budget, keep=keep)
    pools = {p.experts: p for p in r.pools}
    for p in r.pools:
        console.print(f"{p.experts} experts ({', '.join(p.models)}): paper grid {p.grid_points} points, best dev "
                      f"{p.grid_best:.4f}, {p.grid_examples} dev examples ({p.examples_per_trial} per trial)")
        d = p.best_vs_uniform
        if d is not None:
            console.print(f"  the grid's best − the uniform soup (every search's first soup), paired on dev: "
                          f"{d.delta:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}], p = {d.p_value:.3f}"
                          + ("" if d.significant else ": the target is within the noise of where the search starts"))

    def cell(n, k):
        return "never" if n is None else f"{n:g} ({n / pools[k].grid_examples:.0%})"

    table = Table(title=f"dev examples (and trials) to first reach the grid's best, seeds 0..{len(r.seeds) - 1}; "
                        f"% of the grid's examples")
    for name in ("experts", "sampler", "weights", "prune", "median examples", "worst examples",
                 "median trials", "worst trials"):
        table.add_column(name, justify="left" if name in ("sampler", "weights") else "right")
    for row in r.rows:
        table.add_row(str(row.experts), row.sampler, row.weights, f"{row.chunks_label(r.chunks)}",
                      cell(row.median_examples, row.experts), cell(row.worst_examples, row.experts),
                      "never" if row.median_trials is None else f"{row.median_trials:g}",
                      "never" if row.worst_trials is None else str(row.worst_trials))
    console.print(table)
    rest = r.overhead_s_mean - r.wait_s_mean - r.merge_s_mean
    console.print(f"per-trial overhead (trial wall − scoring) over {r.trials_scored} scored trials: "
                  f"{r.overhead_s_mean:.3f} s of {r.trial_s_mean:.3f} s = {r.overhead_fraction:.1%} of trial wall "
                  f"(scoring {r.scoring_s_mean:.3f} s; overhead: a scorer from the free list {r.wait_s_mean:.3f} s, "
                  f"the recipe, cache lookup and merge before it {r.merge_s_mean:.3f} s, the scorer calls, the weights' "
                  f"load and the trial's own work {rest:.3f} s; {r.concurrency} scorers, one trial each)")
    console.print(f"between trials (one trial's end to the next one's start on its trial actor: its log and "
                  f"report, and Tune's turn), median {r.between_s_median:.3f} s; the scorers scored "
                  f"{r.scorers_busy:.0%} of the stages' wall time")
    if json_out is not None:
        with atomic_file(json_out) as fh:
            json.dump(to_json(r), fh, indent=2)
