"""CLI: ``soup-search profile CONFIG.yaml`` — the candidate × category score table."""

from __future__ import annotations

from pathlib import Path

import typer


def profile(
    config: Path = typer.Argument(..., help="search config YAML (see configs/)"),
    out: Path = typer.Option(None, "--out", help="output folder (default: runs/<name>)"),
) -> None:
    """Score every candidate on the dev split of every category, in parallel; write scores.csv."""
    import json

    from rich.console import Console

    from soup_search.config import load_config
    from soup_search.io.atomic import atomic_file, ensure_dir
    from soup_search.pipeline.category_scores import leaderboard_frame, write_scores
    from soup_search.cli.tables import frame_table

    cfg = load_config(config)  # every config problem is reported here, before any Ray work
    out = ensure_dir(out or Path("runs") / cfg.name)
    console = Console()
    if cfg.scores is not None:
        frame, stats = leaderboard_frame(cfg), {"source": str(cfg.resolve(cfg.scores.csv))}
    else:
        frame, stats = profile_frame(cfg, out, console)
    path = write_scores(frame, out / "scores.csv")
    with atomic_file(out / "profile.json") as fh:
        json.dump(stats, fh, indent=2)
    console.print(frame_table(frame, title=f"dev accuracy: {cfg.name}"))
    if stats.get("examples_per_s_per_scorer"):
        console.print(f"throughput: {stats['examples_per_s_per_scorer']:.1f} examples/s per scorer actor "
                      f"({stats['scored']} candidates scored, {stats['cached']} from the cache)")
    console.print(f"wrote {path}")


def profile_frame(cfg, out: Path, console, progress: bool = True):
    """Profile every candidate of ``cfg`` on the dev split through shard and scorer actors."""
    from soup_search.cli.ui import RichProgress
    from soup_search.engine.session import open_session
    from soup_search.pipeline.candidate_set import load_config_candidates
    from soup_search.pipeline.category_scores import score_candidates

    candidates = load_config_candidates(cfg, progress=progress)
    with open_session(cfg, candidates, out / "state") as session:
        scored = score_candidates(session, progress=RichProgress(console, progress))
    fresh = [r for name, r in scored.results.items() if not scored.cached[name] and r.seconds > 0]
    rate = sum(r.n for r in fresh) / sum(r.seconds for r in fresh) if fresh else None
    stats = {"scored": len(fresh), "cached": sum(scored.cached.values()), "examples_per_s_per_scorer": rate,
             "per_candidate": {n: r.to_json() for n, r in scored.results.items()}}
    return scored.frame(), stats


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)
