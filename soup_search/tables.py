"""Rich tables for score frames (models × categories)."""

from __future__ import annotations

import pandas as pd
from rich.table import Table


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
