"""Stage 8: the run's files, written from one :class:`~soup_search.pipeline.final_eval.RunResult`.

Pure writers (no Ray): results.json, trials.csv, report.md, soup.yaml, scores.csv and the
plots. The merged ``best/`` checkpoint needs the shard group and is written by the run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from soup_search.io.atomic import atomic_dir, atomic_file
from soup_search.merge import MergeRecipe
from soup_search.pipeline.final_eval import RunResult
from soup_search.pipeline.plots import plot_comparison, plot_forest, plot_history, plot_weights

FILES = ("results.json", "per_example.json", "trials.csv", "soup.yaml", "report.md", "scores.csv", "plots/")


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def delta_cell(row, transfer: bool = False) -> str:
    """``+0.031 [+0.012, +0.050] p=0.002 *`` (best soup − row; * when the 95% CI excludes 0)."""
    d = row.transfer_vs_best if transfer else row.vs_best
    if d is None:
        return ""
    star = " *" if d.significant else ""
    return f"{d.interval()} p={d.p_value:.3g}{star}"


def trials_frame(result: RunResult) -> pd.DataFrame:
    """One row per trial: stage, dev objective, soup weights, params and per-category dev scores."""
    return pd.DataFrame([{"number": t.number, "stage": t.stage, "dev_mean": t.dev_mean, "pruned": t.pruned,
                          "carried_from": t.carried_from,
                          **{f"w[{m}]": w for m, w in t.weights.get("all", {}).items()},
                          **{f"p[{k}]": v for k, v in t.params.items()},
                          **{f"dev[{c}]": v for c, v in t.dev_per_category.items()}}
                         for t in result.trials])


def mergekit_yaml(result: RunResult) -> str:
    """The best soup's recipe with candidate names replaced by their checkpoint paths, as mergekit YAML."""
    data = dict(result.best_row.recipe)
    data["models"] = [{**entry, "model": str(result.candidate_paths[entry["model"]])} for entry in data["models"]]
    if data.get("base_model"):
        data["base_model"] = str(result.candidate_paths[data["base_model"]])
    return MergeRecipe.model_validate(data).to_yaml()


def lineage_lines(result: RunResult) -> list[str]:
    """The report's Lineage section (none for a run without a parent)."""
    lin = result.lineage
    if lin is None:
        return []
    return ["## Lineage", "", f"A child search: {lin.line()}.", "", *(f"- {note}" for note in lin.notes),
            *([""] if lin.notes else [])]


def report_markdown(result: RunResult) -> str:
    cfg, analysis = result.config, result.analysis
    cats = [c for c in result.best_row.test_per_category if c not in cfg.objective.held_out_categories]
    lines = [f"# soup-search report: {cfg.name}", "",
             f"Objective `{cfg.objective.name}`; sampler `{cfg.search.sampler}`, {cfg.search.n_trials} trials; "
             f"analysis `{analysis.grouping}` at τ = {analysis.tau:g} ({analysis.method}).", "",
             *(f"- {note}" for note in result.objective_notes), *([""] if result.objective_notes else []),
             *lineage_lines(result),
             "## Experts", "",
             *markdown_table(["group", "expert", "alternates"],
                             [[g, e, ", ".join(analysis.alternates.get(g, []))] for g, e in analysis.experts.items()])]
    n = next((r.vs_best.n for r in result.comparison if r.vs_best is not None), None)
    lines += ["", "## Held-out comparison (test split)", "",
              "Δ is the best soup's test objective minus the row's, on the same "
              + (f"{n} " if n else "") + "test examples, with a 95% bootstrap CI that resamples examples "
              "within categories and a paired permutation p-value; * marks a CI that excludes 0.", "",
              *markdown_table(["name", "kind", "dev mean", "test mean", "Δ best soup − row [95% CI], p", *cats],
                              [[r.name, r.kind, f"{r.dev_mean:.4f}", f"{r.test_mean:.4f}", delta_cell(r),
                                *(f"{r.test_per_category.get(c, float('nan')):.3f}" for c in cats)]
                               for r in result.comparison])]
    held = list(cfg.objective.held_out_categories)
    if held:
        lines += ["", "## Transfer: held-out categories (never analysed or searched)", "",
                  f"Categories {', '.join(held)} were left out of the analysis and the search and scored only "
                  "here, on the test split. Δ as above, on these categories only.", "",
                  *markdown_table(["name", "kind", "transfer mean", "Δ best soup − row [95% CI], p", *held],
                                  [[r.name, r.kind, f"{r.transfer_mean:.4f}", delta_cell(r, transfer=True),
                                    *(f"{r.test_per_category.get(c, float('nan')):.3f}" for c in held)]
                                   for r in result.comparison])]
    lines += ["", "## Best soup", "", f"Trial {result.best.number}; weights:", "", "```json",
              json.dumps(result.best_row.to_json()["weights"], indent=2), "```", "", "## Timings (s)", "",
              *markdown_table(["stage", "seconds"], [[k, f"{v:.1f}"] for k, v in result.timings.items()])]
    return "\n".join(lines) + "\n"


def write_outputs(result: RunResult, out: Path) -> None:
    """Write every file of :data:`FILES` into ``out``, each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / "results.json") as fh:
        json.dump(result.to_json(), fh, indent=2)
    with atomic_file(out / "per_example.json") as fh:
        json.dump({"split": "test", "note": "per comparison row and category: each test example's correctness "
                   "(1 or 0), in the objective's example order",
                   "rows": {r.name: dict(r.test_correct) for r in result.comparison}}, fh)
    with atomic_file(out / "trials.csv") as fh:
        trials_frame(result).to_csv(fh, index=False, float_format="%.6g")
    with atomic_file(out / "soup.yaml") as fh:
        fh.write(mergekit_yaml(result))
    with atomic_file(out / "report.md") as fh:
        fh.write(report_markdown(result))
    with atomic_file(out / "scores.csv") as fh:
        result.scores.to_csv(fh, float_format="%.6g")
    trials = [t.to_json() for t in result.trials if not t.pruned]  # plots show dev scores, not running values
    rows = [r.to_json() for r in result.comparison]
    with atomic_dir(out / "plots") as tmp:
        plot_history(trials, tmp / "optimization_history.png")
        plot_weights(trials, tmp / "weights_vs_dev.png")
        plot_comparison(rows, list(result.analysis.categories), tmp / "comparison.png")
        plot_forest(rows, tmp / "forest.png")
