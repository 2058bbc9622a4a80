"""CLI: ``soup-search profile CONFIG.yaml`` — the candidate × category score table."""

from __future__ import annotations

from pathlib import Path

import typer


def profile(
    config: Path = typer.Argument(..., help="search config YAML (see configs/)"),
    out: Path = typer.Option(None, "--out", help="output folder (default: runs/<name>)"),
) -> None:
    """Score every candidate on the dev split of every category, in parallel; write scores.csv."""
    from rich.console import Console

    from soup_search.config import load_config
    from soup_search.tables import frame_table

    cfg = load_config(config)
    out = out or Path("runs") / cfg.name
    console = Console()
    frame, throughput = run_profile(cfg, console)
    from soup_search.profile import write_scores

    path = write_scores(frame, out / "scores.csv")
    console.print(frame_table(frame, title=f"dev accuracy: {cfg.name}"))
    if throughput:
        console.print(f"throughput: {throughput:.1f} examples/s per scorer actor")
    console.print(f"wrote {path}")


def run_profile(cfg, console, progress: bool = True):
    """The category score table of ``cfg``: from its leaderboard CSV, else by profiling."""
    if cfg.scores is not None:
        from soup_search.analysis import read_score_table

        frame = read_score_table(cfg.resolve(cfg.scores.csv), model_column=cfg.scores.model_column)
        return frame.rename(index=cfg.scores.rename), None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from soup_search.cluster import start_ray
    from soup_search.paths import cache_dir
    from soup_search.pool import load_config_pool
    from soup_search.profile import profile_pool, scores_frame
    from soup_search.scoring.actors import ScorerPool
    from soup_search.scoring.base import ObjectiveSpec
    from soup_search.scoring.cache import ScoreCache
    from soup_search.shards import ShardedPool

    pool = load_config_pool(cfg, progress=progress)
    res = cfg.resources
    start_ray(res.address, res.num_cpus)
    spec = ObjectiveSpec(cfg.objective.name, cfg.objective.params)
    cache = ScoreCache(cache_dir("scores") / "scores.sqlite")
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with ShardedPool(pool, n_shards=res.shards, num_cpus=res.shard_cpus) as shards, \
            ScorerPool(pool.paths[0], n=res.scorers, backend=res.backend, num_cpus=res.scorer_cpus,
                       batch_size=res.batch_size) as scorers, \
            Progress(*columns, console=console, disable=not progress) as bar:
        task = bar.add_task("profiling candidates", total=len(pool.names))
        results = profile_pool(pool, spec, shards, scorers, cache,
                               on_result=lambda name, r, cached: bar.advance(task))
    fresh = [r for r in results.values() if r.seconds > 0]
    throughput = sum(r.n for r in fresh) / sum(r.seconds for r in fresh) if fresh else None
    return scores_frame(results), throughput


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)
