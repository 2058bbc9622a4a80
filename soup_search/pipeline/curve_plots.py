"""PNG plots of a curve's JSON (:func:`soup_search.pipeline.curve.Curve.to_json`).

- :func:`plot_curve`: accuracy (per category, and the mean with its 95% CI as error bars) over
  the swept coefficient, above the mean generated tokens (with their 95% CI); transition
  regimes shaded.
- :func:`plot_module_grid`: heatmaps of the mean accuracy and the mean tokens over λ_attn × λ_mlp.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

LABELS = {"lambda": "λ (share of A)", "alpha": "α (scale of plus − minus)",
          "lambda_attn": "λ_attn", "lambda_mlp": "λ_mlp"}


def _errors(values: list[float], cis: list[list[float]]) -> np.ndarray:
    """matplotlib's asymmetric error bars from (low, high) intervals."""
    v = np.asarray(values, dtype=float)
    return np.array([np.maximum(v - [c[0] for c in cis], 0), np.maximum(np.subtract([c[1] for c in cis], v), 0)])


def _title(data: dict) -> str:
    names = data["names"]
    if data["kind"] == "transfer":
        return f"{names['target']} + α·({names['plus']} − {names['minus']}), dev split"
    return f"λ·{names['a']} + (1 − λ)·{names['b']}, dev split"


def plot_curve(data: dict, path: str | Path) -> None:
    """Accuracy and mean generated tokens against the one coefficient of ``data``."""
    axis = data["axes"][0]
    points = sorted(data["points"], key=lambda p: p[axis])
    x = [p[axis] for p in points]
    fig = Figure(figsize=(8, 6.5))
    acc, tok = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    categories = list(dict.fromkeys(c for p in points for c in p["per_category"]))
    for c in categories:
        acc.plot(x, [p["per_category"].get(c, np.nan) for p in points], lw=1, alpha=0.55, label=c)
    means = [p["mean"] for p in points]
    acc.errorbar(x, means, yerr=_errors(means, [p["mean_ci"] for p in points]), color="black", lw=2.2,
                 capsize=3, marker="o", ms=4, label="mean (95% CI)")
    acc.set_ylabel("dev accuracy")
    acc.set_ylim(-0.02, 1.02)
    acc.legend(fontsize=7, ncol=3, loc="best")
    if all(p["mean_tokens"] is not None for p in points):
        tokens = [p["mean_tokens"] for p in points]
        tok.errorbar(x, tokens, yerr=_errors(tokens, [p["mean_tokens_ci"] for p in points]), color="tab:purple",
                     capsize=3, marker="o", ms=4, label="mean tokens (95% CI)")
        tok.legend(fontsize=7, loc="best")
    tok.set_ylabel("generated tokens / answer")
    tok.set_xlabel(LABELS.get(axis, axis))
    for ax in (acc, tok):
        for r in data.get("regimes", []):
            if r["kind"] == "transition":
                ax.axvspan(r["start"], r["end"], color="tab:orange", alpha=0.15, lw=0)
        if axis == "alpha":
            ax.axvline(0.0, color="gray", lw=0.8, ls="--")
    acc.set_title(_title(data) + ("; shaded: transition regimes" if any(
        r["kind"] == "transition" for r in data.get("regimes", [])) else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_module_grid(data: dict, path: str | Path) -> None:
    """Heatmaps of the mean accuracy and mean tokens over λ_attn (rows) × λ_mlp (columns)."""
    attn = sorted({p["lambda_attn"] for p in data["points"]})
    mlp = sorted({p["lambda_mlp"] for p in data["points"]})
    grids = {k: np.full((len(attn), len(mlp)), np.nan) for k in ("mean", "mean_tokens")}
    for p in data["points"]:
        i, j = attn.index(p["lambda_attn"]), mlp.index(p["lambda_mlp"])
        for k, grid in grids.items():
            grid[i, j] = np.nan if p[k] is None else p[k]
    fig = Figure(figsize=(11, 4.8))
    for ax, (key, title, cmap) in zip(fig.subplots(1, 2), (("mean", "mean dev accuracy", "viridis"),
                                                           ("mean_tokens", "generated tokens / answer", "magma"))):
        image = ax.imshow(grids[key], origin="lower", cmap=cmap, aspect="auto")
        fig.colorbar(image, ax=ax, shrink=0.85)
        ax.set_xticks(range(len(mlp)), [f"{v:g}" for v in mlp], fontsize=7)
        ax.set_yticks(range(len(attn)), [f"{v:g}" for v in attn], fontsize=7)
        ax.set_xlabel(LABELS["lambda_mlp"])
        ax.set_ylabel(LABELS["lambda_attn"])
        ax.set_title(title, fontsize=9)
        if len(attn) * len(mlp) <= 144:
            for (i, j), v in np.ndenumerate(grids[key]):
                light = image.norm(v) > 0.6  # both colour maps are light at the top
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if light else "white")
    fig.suptitle(_title(data) + "; other groups: (λ_attn + λ_mlp) / 2", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
