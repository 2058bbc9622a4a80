"""Plots of the analysis: an annotated ρ heatmap (clustered order) and the category dendrogram.

Figures are built with matplotlib's object-oriented API (``Figure``, no pyplot), so no
backend is selected, no global figure state is kept, and no display is needed.
"""

from __future__ import annotations

import os

import pandas as pd
from matplotlib.figure import Figure
from scipy.cluster import hierarchy

from soup_search.analysis.correlation import category_linkage, leaf_order


def plot_heatmap(corr: pd.DataFrame, path: str | os.PathLike, title: str = "category correlation ρ") -> None:
    """Write a heatmap of ``corr`` annotated with ρ, categories in dendrogram leaf order."""
    order = leaf_order(corr)
    data = corr.loc[order, order].to_numpy(dtype=float)
    n = len(order)
    size = max(4.0, 0.6 * n + 2.5)
    fig = Figure(figsize=(size, size * 0.85))
    ax = fig.subplots()
    image = ax.imshow(data, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
    ax.set_xticks(range(n), labels=order, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels=order, fontsize=8)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(data[i, j]) > 0.6 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="ρ")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_dendrogram(corr: pd.DataFrame, path: str | os.PathLike, tau: float | None = None) -> None:
    """Write the average-linkage dendrogram on 1 − |ρ|; a dashed line marks the cut at 1 − τ."""
    cats = list(corr.columns)
    fig = Figure(figsize=(max(5.0, 0.5 * len(cats) + 3.0), 4.5))
    ax = fig.subplots()
    if len(cats) >= 2:
        hierarchy.dendrogram(category_linkage(corr), labels=cats, ax=ax, leaf_rotation=45,
                             leaf_font_size=8, color_threshold=None if tau is None else 1.0 - tau)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    if tau is not None:
        ax.axhline(1.0 - tau, linestyle="--", color="grey", linewidth=1, label=f"1 − τ = {1.0 - tau:.2f}")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_ylabel("distance 1 − |ρ| (average linkage)")
    ax.set_title("category dendrogram")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
