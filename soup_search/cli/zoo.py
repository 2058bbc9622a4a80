"""CLI commands: ``zoo build`` (train the toy zoo), ``zoo scores`` (its dev score table) and
``zoo benchmark`` (the toy benchmark written as JSONL or lm-eval task files)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

SIZE_HELP = ("Zoo size: 'tiny' (test zoo, ~30 s), 'default' (the full zoo, a few minutes on 2 cores); "
             "'small' is an alias of 'default'; 'tiny-verbose' (opt-in: the tiny base and a verbose/terse "
             "pair of answer lengths, for `soup-search sweep`, ~30 s).")

zoo_app = typer.Typer(help="The toy zoo: a tiny Llama base model and category experts trained here.",
                      no_args_is_help=True)


@zoo_app.command("build")
def build(
    out: Optional[Path] = typer.Option(None, "--out", help="Write the zoo to this dir instead of the cache."),
    size: str = typer.Option("default", "--size", help=SIZE_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of initialisation, data and batch order."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if a matching zoo exists."),
) -> None:
    """Train the base model and the category experts (cached; a second call returns at once)."""
    from rich.console import Console

    from soup_search.zoo import build_zoo

    zoo = build_zoo(size=size, out=out, seed=seed, progress=True, force=force)
    manifest = zoo.manifest
    console = Console()
    console.print(f"zoo [bold]{zoo.size}[/] at {zoo.root}")
    parts = [f"{len(zoo.experts)} experts"] if zoo.experts or not zoo.length_pair else []
    parts += [f"{len(zoo.conflicting)} conflicting"] if zoo.conflicting else []
    parts += [" and ".join(zoo.length_pair)] if zoo.length_pair else []
    console.print(f"{len(zoo.models())} models (base + {' + '.join(parts)}); built in "
                  f"{manifest['build_seconds']:.1f} s wall, {manifest['build_cpu_seconds']:.1f} s CPU "
                  f"on {manifest['created']}")


@zoo_app.command("scores")
def scores(
    size: str = typer.Option("default", "--size", help=SIZE_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of the zoo to score (built if missing)."),
    out: Optional[Path] = typer.Option(None, "--out", help="CSV path (default: <zoo root>/scores_<split>.csv)."),
    split: str = typer.Option("dev", "--split", help="Split to score: dev or train (test is held out)."),
    soup: bool = typer.Option(False, "--soup", help="Also score the uniform soup of the experts."),
    batch_size: int = typer.Option(256, "--batch-size", help="Prompts decoded per batch."),
) -> None:
    """Score every zoo model on every toy category (greedy decoding), print a table, write a CSV."""
    from rich.console import Console
    from rich.table import Table

    from soup_search.objectives.toy import ToyObjective
    from soup_search.errors import ObjectiveError
    from soup_search.zoo import build_zoo
    from soup_search.zoo.scores import score_zoo, write_scores_csv

    if split == "test":
        raise ObjectiveError("zoo scores refuses the test split (held out for the final report); "
                             "use --split dev")
    if split not in ("dev", "train"):
        raise ObjectiveError(f"unknown split {split!r}; use --split dev or --split train")
    zoo = build_zoo(size=size, seed=seed, progress=True)
    objective = ToyObjective(seed=0)
    table = score_zoo(zoo, objective, split, soup=soup, batch_size=batch_size)
    path = out or zoo.root / f"scores_{split}.csv"
    write_scores_csv(path, table, objective.categories)

    grid = Table(title=f"zoo {zoo.size}: accuracy on {split} ({zoo.root})")
    grid.add_column("model")
    for cat in objective.categories:
        grid.add_column(cat, justify="right")
    grid.add_column("mean", justify="right", style="bold")
    for name, row in table.items():
        values = [row[c] for c in objective.categories]
        grid.add_row(name, *(f"{v:.2f}" for v in values), f"{sum(values) / len(values):.3f}")
    console = Console()
    console.print(grid)
    console.print(f"wrote {path}")


@zoo_app.command("benchmark")
def benchmark(
    out: Path = typer.Option(..., "--out", help="Write the benchmark into this new (or empty) folder."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (one toy.jsonl for the jsonl objective) or lm-eval "
                            "(a task YAML per category, the group 'toy', JSON-lines data; absolute data paths)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the toy examples (the toy objective's seed)."),
    n_train: Optional[int] = typer.Option(None, "--n-train", help="Train examples per category (default 2000)."),
    n_dev: Optional[int] = typer.Option(None, "--n-dev", help="Dev examples per category (default 100)."),
    n_test: Optional[int] = typer.Option(None, "--n-test", help="Test examples per category (default 100)."),
    choices: int = typer.Option(0, "--choices", help="Multiple choice with this many choices (0: generated answers)."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier `zoo benchmark` folder."),
) -> None:
    """Write the toy objective's examples as files, as your own benchmark would look."""
    import yaml
    from rich.console import Console

    from soup_search.zoo.benchmark import write_benchmark

    sizes = {k: v for k, v in {"n_train": n_train, "n_dev": n_dev, "n_test": n_test}.items() if v is not None}
    bench = write_benchmark(out, fmt, seed=seed, choices=choices, force=force, **sizes)
    console = Console(highlight=False, soft_wrap=True)
    files = bench.files[0] if len(bench.files) == 1 else f"{len(bench.files)} files"
    console.print(f"wrote the toy benchmark ({bench.format}: {files}) to {bench.root}")
    console.print("its config section:\n" + yaml.safe_dump({"objective": bench.objective}, sort_keys=False).rstrip(),
                  markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``zoo`` command group to the main app."""
    app.add_typer(zoo_app, name="zoo")
