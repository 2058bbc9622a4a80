"""PNG plots of a search: optimization history, dev score against weights, comparison bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def plot_history(trials: list[dict], path: str | Path) -> None:
    """Dev objective per trial, with the running best."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for stage, marker in (("search", "o"), ("grid", "x")):
        pts = [(t["number"], t["dev_mean"]) for t in trials if t["stage"] == stage]
        if pts:
            ax.scatter(*zip(*pts), s=18, marker=marker, label=stage, alpha=0.8)
    search = sorted((t["number"], t["dev_mean"]) for t in trials if t["stage"] == "search")
    if search:
        best, run = [], float("-inf")
        for _, v in search:
            run = max(run, v)
            best.append(run)
        ax.step([n for n, _ in search], best, where="post", color="black", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("dev objective")
    ax.set_title("optimization history")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_weights(trials: list[dict], path: str | Path) -> None:
    """Dev objective against each model's soup weight (one panel per model)."""
    models = sorted({m for t in trials for m in t["weights"].get("all", t["weights"].get("attn", {}))})
    n = max(1, len(models))
    fig = Figure(figsize=(3.2 * n, 3.2))
    axes = fig.subplots(1, n, sharey=True, squeeze=False)
    for ax, m in zip(axes[0], models):
        xs, ys = [], []
        for t in trials:
            w = t["weights"].get("all") or t["weights"].get("attn", {})
            xs.append(w.get(m, 0.0))
            ys.append(t["dev_mean"])
        ax.scatter(xs, ys, s=14, alpha=0.7)
        ax.set_xlabel(f"weight of {m}", fontsize=8)
        ax.set_xlim(-0.02, 1.02)
    axes[0][0].set_ylabel("dev objective")
    fig.suptitle("dev objective vs soup weights")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_comparison(rows: list[dict], categories: list[str], path: str | Path) -> None:
    """Per-category test accuracy of every comparison row, plus the mean."""
    labels = [*categories, "mean"]
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(rows))
    fig = Figure(figsize=(max(7, 1.1 * len(labels) + 2), 4.5))
    ax = fig.add_subplot()
    for i, r in enumerate(rows):
        vals = [r["test_per_category"].get(c, 0.0) for c in categories] + [r["test_mean"]]
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=f"{r['name']} ({r['kind']})")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylabel("test accuracy")
    ax.set_title("held-out comparison")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_forest(rows: list[dict], path: str | Path) -> None:
    """The best soup's test objective minus each other row's, with its 95% CI (a forest plot)."""
    rows = [r for r in rows if "delta" in r]
    fig = Figure(figsize=(7, 1.0 + 0.45 * max(1, len(rows))))
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    colors = ["tab:green" if r["ci_low"] > 0 else "tab:red" if r["ci_high"] < 0 else "tab:gray" for r in rows]
    for yi, r, color in zip(y, rows, colors):
        ax.errorbar([r["delta"]], [yi], xerr=[[r["delta"] - r["ci_low"]], [r["ci_high"] - r["delta"]]],
                    fmt="o", color=color, capsize=4)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r['name']} (p={r['p_value']:.2g})" for r in rows], fontsize=8)
    ax.set_xlabel("best soup − row, test objective (95% CI)")
    ax.set_title("held-out differences, paired by example")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
