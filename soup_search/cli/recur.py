"""CLI command: ``recur`` (retrofit depth recurrence onto a Llama checkpoint, train, plot accuracy by depth)."""

from __future__ import annotations

from pathlib import Path

import typer


def recur(
    checkpoint: str = typer.Argument(..., help="Llama checkpoint folder, or zoo:SIZE/NAME (e.g. zoo:default/base)."),
    split: str = typer.Option(..., "--split", help="Prelude, recurrent block and coda layer counts P,R,C; they "
                                                   "must sum to the checkpoint's layers (the zoo's have 2: 1,1,0)."),
    curriculum: str = typer.Option("linear:1:4", "--curriculum",
                                   help="Mean recurrences over training: linear:START:END[:RAMP], "
                                        "1-sqrt:START:END[:RAMP], constant:N, or a list of stage means 1,2,3,4."),
    steps: int = typer.Option(..., "--steps", help="Training steps (batches) of the continued training."),
    out: Path = typer.Option(..., "--out", help="Output folder: model/, recurrence.json, .csv and .png."),
    seed: int = typer.Option(0, "--seed", help="Seed of the batches, the recurrence draws and the state noise."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak AdamW learning rate (warmup, then cosine to 10%)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Training examples per step."),
    backprop_depth: int = typer.Option(8, "--backprop-depth",
                                       help="Gradients flow through only the last this many recurrences."),
    recurrences: str = typer.Option("1:8", "--recurrences", help="Recurrence counts to score: A:B or a list."),
    control: bool = typer.Option(True, "--control/--no-control",
                                 help="Also train the parent the same steps without recurrence, as a baseline."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier soup-search output folder."),
) -> None:
    """Split a Llama into prelude / recurrent block / coda, train it with a recurrence curriculum on the
    toy train split, save it (loads with trust_remote_code) and plot test accuracy against recurrences."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from transformers.utils import logging as hf_logging

    from soup_search.recur.report import MODEL_DIR, PLOT_FILE
    from soup_search.recur.run import make_request, run_recur

    request = make_request(checkpoint, split, curriculum, steps, out, seed=seed, lr=lr, batch_size=batch_size,
                           backprop_depth=backprop_depth, recurrences=recurrences, control=control, force=force)
    hf_logging.disable_progress_bar()
    console = Console()
    result = run_recur(request, say=lambda m: console.print(f"[dim]{m}[/]"))

    table = Table(title=f"test accuracy by recurrences ({result.parent_accuracy.n} examples)",
                  box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    ref = f"vs_{result.reference[0]}"
    for name in ("model", "r", "accuracy [95% CI]", f"Δ vs {result.reference[0]} [95% CI]", "p"):
        table.add_column(name, justify="left" if name == "model" else "right", no_wrap=True)
    for row in result.rows():
        recurrent = row["recurrences"] != ""
        vs = f"{row[ref]:+.3f} [{row[ref + '_ci95_low']:+.3f}, {row[ref + '_ci95_high']:+.3f}]" if recurrent else ""
        table.add_row(row["model"], str(row["recurrences"]),
                      f"{row['accuracy']:.3f} [{row['ci95_low']:.3f}, {row['ci95_high']:.3f}]", vs,
                      f"{row[ref + '_p']:.2g}" if recurrent else "")
    console.print(table)
    console.print(f"trained in {result.train.seconds:.1f} s (final loss {result.train.final_loss:.4f}); "
                  f"{result.seconds:.1f} s in all")
    console.print(f"wrote {request.out / MODEL_DIR} and {request.out / PLOT_FILE}")


def register(app: typer.Typer) -> None:
    """Add the ``recur`` command to the main app."""
    app.command("recur")(recur)
