"""The promotion gate: does a watch's new best soup really beat its champion?

Both soups' per-example correctness on the held-out test split is read from their runs'
``per_example.json``; the gate promotes the challenger only when

- both were scored on the same objective revision (the same test examples, the same objective),
- the paired difference challenger − champion has a 95% bootstrap CI (examples resampled
  within categories, as the search objective weighs them) whose lower end is above ``margin``,
- and no category's test accuracy drops by more than ``tolerance``.

The decision, promoted or not, carries every number it used. Nothing here needs Ray.
"""

from __future__ import annotations

import json
from pathlib import Path

from soup_search.analysis.paired import example_bits, paired_delta

BEST = "best soup"


class Run:
    """What the gate reads from a finished run folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.results = json.loads((self.folder / "results.json").read_text())
        self.per_example = json.loads((self.folder / "per_example.json").read_text())["rows"][BEST]
        config = self.results.get("config") or {}
        self.held_out = set((config.get("objective") or {}).get("held_out_categories") or [])

    @property
    def objective_revision(self) -> str | None:
        return self.results.get("objective_revision")

    @property
    def weights(self) -> dict | None:
        return self.results.get("category_weights")

    @property
    def test_mean(self) -> float:
        return float(self.results["best"]["test_mean"])

    @property
    def test_per_category(self) -> dict[str, float]:
        return {c: float(v) for c, v in self.results["best"]["test_per_category"].items() if c not in self.held_out}


def decide(challenger_dir: Path, champion_dir: Path | None, margin: float = 0.0, tolerance: float = 0.02,
           seed: int = 0) -> dict:
    """The gate's decision: ``promoted``, ``reasons`` (why not, or why), and its numbers."""
    new = Run(challenger_dir)
    out: dict = {"margin": margin, "tolerance": tolerance, "challenger_test_mean": new.test_mean,
                 "objective_revision": new.objective_revision}
    if champion_dir is None:
        return out | {"promoted": True, "reasons": ["no champion yet: the first search's best soup becomes it"]}
    old = Run(champion_dir)
    out["champion_test_mean"] = old.test_mean
    if new.objective_revision is None or new.objective_revision != old.objective_revision:
        return out | {"promoted": False, "champion_objective_revision": old.objective_revision, "reasons": [
            f"the champion was scored on objective revision {old.objective_revision}, the challenger on "
            f"{new.objective_revision}: their test scores are not comparable"]}
    categories = [c for c in new.per_example if c not in new.held_out and new.per_example[c]]
    missing = [c for c in categories if len(old.per_example.get(c, "")) != len(new.per_example[c])]
    if missing:
        return out | {"promoted": False, "reasons": [
            f"the champion has no matching test examples for {', '.join(missing)}"]}
    a, labels = example_bits(new.per_example, categories)
    b, _ = example_bits(old.per_example, categories)
    d = paired_delta(a, b, labels, new.weights, seed=seed)
    drops = {c: round(old.test_per_category[c] - new.test_per_category[c], 6)
             for c in categories if c in old.test_per_category and c in new.test_per_category}
    worst = max(drops, key=drops.get) if drops else None
    out |= {"delta": d.delta, "ci_low": d.ci_low, "ci_high": d.ci_high, "p_value": d.p_value, "n": d.n,
            "category_drop": drops, "worst_category": worst, "worst_drop": drops.get(worst) if worst else None}
    reasons = []
    if not d.ci_low > margin:
        reasons.append(f"the CI's lower end {d.ci_low:+.4f} is not above the margin {margin:+.4f} "
                       f"(Δ {d.delta:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}], p={d.p_value:.3g})")
    regressed = {c: v for c, v in drops.items() if v > tolerance}
    if regressed:
        reasons.append("categories regress beyond the tolerance " + f"{tolerance:.3f}: "
                       + ", ".join(f"{c} −{v:.3f}" for c, v in sorted(regressed.items())))
    if reasons:
        return out | {"promoted": False, "reasons": reasons}
    return out | {"promoted": True, "reasons": [
        f"beats the champion: Δ {d.delta:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}] > margin {margin:+.4f}, "
        f"no category drops more than {tolerance:.3f}"]}
