"""CLI command: ``soup-search analyze`` — SoCE analysis of a score table.

Reads a leaderboard snapshot or a ``scores.csv``, writes ``analysis.json``,
``heatmap.png`` and ``dendrogram.png`` into ``--out`` atomically, and prints a summary.
Lists in options are comma separated; names may contain spaces ("Non-Live AST Acc").
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

from soup_search.config import DEFAULT_TOP_K


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _matching(models: list[str], pattern: str) -> list[str]:
    from soup_search.errors import AnalysisError

    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise AnalysisError(f"--candidates-matching {pattern!r} is not a valid regular expression: {exc}") from None
    found = [m for m in models if regex.search(m)]
    if not found:
        raise AnalysisError(f"--candidates-matching {pattern!r} matches no model; check the pattern")
    return found


def analyze_command(
    scores: Annotated[Path, typer.Option("--scores", help="CSV of models × categories (leaderboard or scores.csv).")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (written atomically; never an existing "
                                                    "folder soup-search did not write).")],
    model_column: Annotated[str, typer.Option("--model-column", help="Column holding model names.")] = "Model",
    categories: Annotated[str | None, typer.Option(
        "--categories", help="Comma-separated categories (default: every numeric column).")] = None,
    candidates: Annotated[str | None, typer.Option(
        "--candidates", help="Comma-separated models that may be experts (default: all).")] = None,
    candidates_matching: Annotated[str | None, typer.Option(
        "--candidates-matching", help="Regular expression; models whose name matches may be experts.")] = None,
    method: Annotated[str, typer.Option("--method", help="pearson or spearman.")] = "pearson",
    tau: Annotated[float | None, typer.Option("--tau", help="Weak-correlation threshold τ in [0, 1] (default 0.5).")] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Alternates kept per category.")] = DEFAULT_TOP_K,
    grouping: Annotated[str, typer.Option("--grouping", help="weak (one expert per weak category) or cluster.")] = "weak",
    drop_missing: Annotated[bool, typer.Option(
        "--drop-missing", help="Leave out models with N/A in a chosen category.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if an earlier analyze wrote it.")] = False,
) -> None:
    """SoCE analysis: correlate categories across models, find weak ones, pick an expert for each."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from soup_search.analysis import DEFAULT_TAU, analyze, plot_dendrogram, plot_heatmap, read_score_table
    from soup_search.analysis.table import skipped_note
    from soup_search.errors import AnalysisError
    from soup_search.io.atomic import atomic_dir, check_target

    check_target(out, overwrite=force)
    if candidates is not None and candidates_matching is not None:
        raise AnalysisError("give --candidates or --candidates-matching, not both")
    table = read_score_table(scores, model_column=model_column, categories=_split(categories),
                             drop_missing=drop_missing)
    note = skipped_note(table.attrs["skipped_columns"])
    if note:
        Console(stderr=True).print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    candidates = _split(candidates)
    if candidates_matching is not None:
        candidates = _matching(list(table.index), candidates_matching)
    result = analyze(table, candidates=candidates, method=method, tau=DEFAULT_TAU if tau is None else tau,
                     top_k=top_k, grouping=grouping)

    with atomic_dir(out, overwrite=force) as tmp:
        (tmp / "analysis.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
        plot_heatmap(result.correlation, tmp / "heatmap.png", title=f"{result.method} ρ across {len(result.models)} models")
        plot_dendrogram(result.correlation, tmp / "dendrogram.png", tau=result.tau)

    console = Console()
    summary = Table(title=f"SoCE analysis ({result.method}, τ={result.tau:g}, {len(result.models)} models, "
                          f"{len(result.candidates)} candidates)")
    for col in ("category" if result.grouping == "weak" else "cluster", "weak?", "expert", "score", "alternates"):
        summary.add_column(col, overflow="fold")
    weak = set(result.weak_categories)
    if result.grouping == "weak":
        rows = [(c, [c]) for c in result.categories]
    else:
        rows = list(result.groups.items())
    for label, cats in rows:
        expert = result.experts.get(label)
        summary.add_row(
            label,
            "yes" if all(c in weak for c in cats) else ("some" if any(c in weak for c in cats) else "no"),
            expert or "-",
            f"{result.expert_scores[label]:.4g}" if expert else "-",
            ", ".join(result.alternates.get(label, [])) or "-",
        )
    console.print(summary)
    if result.dropped_models:
        console.print(f"left out (missing scores): {', '.join(result.dropped_models)}")
    console.print(f"wrote {out}/analysis.json, heatmap.png, dendrogram.png")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("analyze")(analyze_command)
