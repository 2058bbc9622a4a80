"""Rich tables for score frames (models × categories)."""

from __future__ import annotations

import pandas as pd
from rich import box
from rich.table import Table
from rich.text import Text


def frame_table(frame: pd.DataFrame, title: str | None = None, mean: bool = True, digits: int = 3) -> Table:
    """A rich table of a numeric frame, with a mean column and the best value per column in bold."""
    table = Table(title=title)
    table.add_column(frame.index.name or "model", style="cyan")
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    if mean:
        table.add_column("mean", justify="right", style="bold")
    best = frame.max(axis=0)
    for name, row in frame.iterrows():
        cells = [f"[bold]{v:.{digits}f}[/]" if v == best[c] else f"{v:.{digits}f}" for c, v in row.items()]
        if mean:
            cells.append(f"{row.mean():.{digits}f}")
        table.add_row(str(name), *cells)
    return table


def comparison_table(result) -> Table:
    """Dev and held-out test means of every comparison row of a RunResult, against the best expert."""
    rows = result.comparison
    table = Table(title="held-out comparison (test split)")
    for col in ("name", "kind", "dev mean", "test mean", "Δ soup − row [95% CI]", "p"):
        table.add_column(col, justify="left" if col in ("name", "kind") else "right")
    table.caption = "paired on the same test examples; * the 95% CI excludes 0"
    best_test = max(r.test_mean for r in rows)
    for r in rows:
        mean = f"{r.test_mean:.4f}"
        d = r.vs_best
        delta = "" if d is None else d.interval() + (" *" if d.significant else "")
        table.add_row(r.name, r.kind, f"{r.dev_mean:.4f}", f"[bold green]{mean}[/]" if r.test_mean == best_test else mean,
                      f"[bold]{delta}[/]" if d is not None and d.significant else delta,
                      "" if d is None else f"{d.p_value:.3g}")
    return table


def transfer_table(result) -> Table | None:
    """The held-out categories (never analysed or searched) of every row; None when there are none."""
    held = list(result.config.objective.held_out_categories)
    if not held:
        return None
    table = Table(title=f"transfer: held-out categories {', '.join(held)} (test split)")
    for col in ("name", "kind", "transfer mean", "Δ soup − row [95% CI]", "p"):
        table.add_column(col, justify="left" if col in ("name", "kind") else "right")
    for r in result.comparison:
        d = r.transfer_vs_best
        delta = "" if d is None else d.interval() + (" *" if d.significant else "")
        table.add_row(r.name, r.kind, f"{r.transfer_mean:.4f}", delta, "" if d is None else f"{d.p_value:.3g}")
    return table


def curve_table(data: dict, width: int | None = None) -> Table:
    """A curve's points (from its JSON): coefficients, per-category dev accuracy, the mean with its
    95% CI (the best in bold) and the mean generated tokens per answer. When the per-category
    columns do not fit in ``width`` they are left out, and the caption says where they are."""
    axes, points = data["axes"], data["points"]
    categories = list(dict.fromkeys(c for p in points for c in p["per_category"]))
    best = max(p["mean"] for p in points)
    rows = []
    for p in points:
        mean = f"{p['mean']:.3f}"
        rows.append({**{a: f"{p[a]:g}" for a in axes},
                     **{c: f"{p['per_category'].get(c, float('nan')):.2f}" for c in categories},
                     "mean": f"[bold]{mean}[/]" if p["mean"] == best else mean,
                     "95% CI": f"{p['mean_ci'][0]:.2f}–{p['mean_ci'][1]:.2f}",
                     "tokens": "" if p["mean_tokens"] is None else f"{p['mean_tokens']:.2f}"})
    columns = [*axes, *categories, "mean", "95% CI", "tokens"]

    def needed(cols: list[str]) -> int:  # each column: its widest cell, one space either side
        return sum(max(len(c), *(len(Text.from_markup(r[c]).plain) for r in rows)) + 2 for c in cols)

    caption = None
    if width is not None and needed(columns) > width:
        columns = [*axes, "mean", "95% CI", "tokens"]
        caption = "per-category accuracy: the .csv and .json beside the plot"
    table = Table(title=f"{data['kind']}: dev accuracy and generated tokens per answer", caption=caption,
                  box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(*(r[c] for c in columns))
    return table
