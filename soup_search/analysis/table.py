"""Read a score table (models × categories) from a leaderboard snapshot or a ``scores.csv``.

Two formats are read the same way:

* a leaderboard export such as BFCL v3: a ``Model`` column, percent strings (``"78.45%"``),
  ``"N/A"`` in cost/latency, and extra columns (Rank, Model Link, Organization, License);
* the ``scores.csv`` that ``soup-search profile`` / ``zoo scores`` write: first column
  ``model``, one column per category, values in [0, 1].

Scale: a percent string keeps the leaderboard's 0-100 scale (``"78.45%"`` → ``78.45``);
plain numbers are taken as they are. Correlation and expert ranking are scale-free.

Default categories are the columns whose every cell is a number or a percent, except the
model column and columns whose name marks them as no category (rank, overall score, cost,
latency). A column left out although it holds some numbers is recorded, with its first bad
cell, in ``table.attrs["skipped_columns"]`` (see :func:`skipped_note`). Explicitly named
``categories`` are taken as given, whatever their name.

Missing cells (``N/A``, ``NA``, ``-``, empty) are an error in a selected category unless
``drop_missing=True``, which leaves out the models that lack a score there.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Sequence

import pandas as pd

from soup_search.errors import AnalysisError

#: a column whose name matches this is never a default category
NON_CATEGORY = re.compile(r"^\s*(#|rank)\s*$|overall|cost|latency|link|organi[sz]ation|license",
                          re.IGNORECASE)
MISSING = frozenset({"", "n/a", "na", "nan", "-", "none", "null"})
_PERCENT = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+))\s*%$")


def parse_cell(cell: object) -> float | None:
    """A number from ``"78.45%"`` (→ 78.45) or ``"0.5"``; ``None`` for anything else."""
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        value = float(cell)
    else:
        text = str(cell).strip()
        match = _PERCENT.match(text)
        try:
            value = float(match.group(1)) if match else float(text)
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def is_missing(cell: object) -> bool:
    return str(cell).strip().lower() in MISSING


def near_matches(name: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Known names that look like ``name`` (case-insensitive), best first."""
    lowered = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]


def unknown_names_error(kind: str, unknown: Sequence[str], known: Sequence[str]) -> AnalysisError:
    """One-line error for unknown category/model names, with near matches."""
    parts = []
    for name in unknown:
        near = near_matches(name, known)
        parts.append(f"{name!r}" + (f" (did you mean {', '.join(repr(n) for n in near)}?)" if near else ""))
    shown = ", ".join(repr(k) for k in list(known)[:30]) + (", ..." if len(known) > 30 else "")
    kinds = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
    return AnalysisError(f"unknown {kind} {', '.join(parts)}; known {kinds}: {shown}")


def _model_column(frame: pd.DataFrame, wanted: str, source: str) -> str:
    if wanted in frame.columns:
        return wanted
    folded = [c for c in frame.columns if c.strip().lower() == wanted.strip().lower()]
    if len(folded) == 1:
        return folded[0]
    raise AnalysisError(
        f"{source}: no model column {wanted!r}; columns are {list(frame.columns)}; "
        "name the right one with --model-column"
    )


def _default_categories(frame: pd.DataFrame, model_col: str, exclude: set[str],
                        allow_missing: bool) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """The numeric columns, and column -> (model, cell) of the first bad cell of each column left
    out although it holds some numbers (a typo in a score column must not pass unnoticed)."""
    cats, skipped = [], {}
    for col in frame.columns:
        if col == model_col or col in exclude or NON_CATEGORY.search(col):
            continue
        cells = frame[col]
        numeric = cells.map(lambda c: parse_cell(c) is not None).astype(bool)
        ok = numeric | cells.map(is_missing).astype(bool) if allow_missing else numeric
        if ok.all() and numeric.any():
            cats.append(col)
        elif numeric.any():
            bad = int((~ok).to_numpy().argmax())
            skipped[col] = (str(frame[model_col].iloc[bad]), str(cells.iloc[bad]))
    return cats, skipped


def skipped_note(skipped: dict[str, tuple[str, str]]) -> str | None:
    """One line naming each column left out for a non-numeric cell, or None."""
    if not skipped:
        return None
    cols = "; ".join(f"{col!r} (model {model!r} has {cell!r})" for col, (model, cell) in skipped.items())
    missing = any(is_missing(cell) for _, cell in skipped.values())
    return (f"left out column{'s' if len(skipped) > 1 else ''} with non-numeric cells: {cols}; fix the cell"
            + (", pass --drop-missing to leave out models without a score" if missing else "")
            + " or name the categories with --categories")


def read_score_table(path: str | os.PathLike, model_column: str = "Model",
                     categories: Sequence[str] | None = None, *,
                     exclude: Sequence[str] | None = None,
                     drop_missing: bool = False) -> pd.DataFrame:
    """Models × categories as floats, index = model names (in file order), columns = categories.

    Raises :class:`AnalysisError` on a missing file or model column, duplicate or empty
    model names, unknown categories (with near matches), non-numeric cells (naming model
    and column) and missing cells unless ``drop_missing``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AnalysisError(f"score table {path!r} does not exist; pass a CSV with one row per model")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"cannot read score table {path!r} as CSV: {str(exc).splitlines()[0]}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    model_col = _model_column(frame, model_column, path)
    if frame.empty:
        raise AnalysisError(f"{path}: no rows under the header; add one row of scores per model")
    models = frame[model_col].map(lambda m: str(m).strip())
    if (models == "").any():
        row = int((models == "").to_numpy().argmax()) + 2
        raise AnalysisError(f"{path}: empty model name on line {row}; give every row a model name")
    dups = sorted(set(models[models.duplicated()]))
    if dups:
        raise AnalysisError(f"{path}: duplicate model names {dups}; keep one row per model")
    frame = frame.drop(columns=[model_col]).set_index(pd.Index(models, name="model"))

    excluded = set(exclude or ())
    skipped: dict[str, tuple[str, str]] = {}
    if categories is None:
        cats, skipped = _default_categories(frame.reset_index(), "model", excluded, drop_missing)
        if not cats:
            raise AnalysisError(f"{path}: no numeric category columns found; name them with --categories")
    else:
        cats = [c.strip() for c in categories if c.strip() and c.strip() not in excluded]
        unknown = [c for c in cats if c not in frame.columns]
        if unknown:
            raise unknown_names_error("category", unknown, list(frame.columns))
        if len(set(cats)) != len(cats):
            raise AnalysisError(f"categories named twice: {sorted({c for c in cats if cats.count(c) > 1})}")

    raw = frame[cats]
    values = raw.map(parse_cell).astype(object)
    missing = raw.map(is_missing)
    drop = pd.Series(False, index=raw.index)
    for col in cats:
        for model, cell in raw[col].items():
            if not pd.isna(values.at[model, col]):
                continue
            if missing.at[model, col] and drop_missing:
                drop[model] = True
                continue
            fix = ("pass --drop-missing to leave such models out" if missing.at[model, col]
                   else "fix the cell or leave the column out with --categories")
            raise AnalysisError(
                f"{path}: non-numeric score {cell!r} for model {model!r} in category {col!r}; {fix}"
            )
    table = values[~drop].astype(float)
    table.columns.name = "category"
    table.attrs["dropped_models"] = list(raw.index[drop])
    table.attrs["skipped_columns"] = skipped
    return table
