"""CLI: ``soup-search run`` (the whole pipeline) and ``soup-search demo`` (the toy zoo, end to end)."""

from __future__ import annotations

from pathlib import Path

import typer


def run(
    config: Path = typer.Argument(..., help="search config YAML (see configs/)"),
    out: Path = typer.Option(None, "--out", help="run folder (default: runs/<name>)"),
    resume: bool = typer.Option(False, "--resume", help="require an earlier run in --out and continue it"),
    fresh: bool = typer.Option(False, "--fresh", help="discard an earlier run's state in --out and start over"),
) -> None:
    """Profile → analyze → search → held-out report. Started again, it continues the same study."""
    from soup_search.config import load_config

    cfg = load_config(config)  # every config problem is reported here, before any Ray work
    run_and_show(cfg, out or Path("runs") / cfg.name, resume=resume, fresh=fresh)


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="run folder"),
    fresh: bool = typer.Option(False, "--fresh", help="start the search over"),
) -> None:
    """Build the toy zoo if needed, then run configs/demo.yaml end to end on CPU."""
    import time

    from soup_search.config import load_config
    from soup_search.errors import ConfigError

    start = time.perf_counter()
    path = demo_config_path()
    if not path.is_file():
        raise ConfigError(str(path), ["the demo config is missing; run the demo from a source checkout "
                                      "installed with pip install -e ."])
    console = run_and_show(load_config(path), out, fresh=fresh)
    console.print(f"demo finished in {time.perf_counter() - start:.0f} s")


def run_and_show(cfg, out: Path, resume: bool = False, fresh: bool = False):
    """Run the pipeline with rich progress, then print the comparison table; returns the console."""
    from rich.console import Console

    from soup_search.cli.tables import comparison_table, transfer_table
    from soup_search.cli.ui import RichProgress
    from soup_search.io.atomic import check_target, ensure_dir
    from soup_search.pipeline.outputs import FILES
    from soup_search.pipeline.run import run_pipeline

    ensure_dir(out)  # an unwritable --out, or a file there, is refused now, not after the search
    for folder in [f.rstrip("/") for f in FILES if f.endswith("/")] + ["best"]:
        check_target(out / folder, overwrite=True)  # a run replaces these: refuse now one it did not write
    console = Console()
    result = run_pipeline(cfg, out, RichProgress(console), resume=resume, fresh=fresh)
    console.print(comparison_table(result))
    transfer = transfer_table(result)
    if transfer is not None:
        console.print(transfer)
    console.print(f"wrote {out}/ {', '.join(FILES)}, best/")
    return console


def demo_config_path() -> Path:
    """configs/demo.yaml of the source tree soup-search is installed from (pip install -e .)."""
    import soup_search

    return Path(soup_search.__file__).resolve().parents[1] / "configs" / "demo.yaml"


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("demo")(demo)
