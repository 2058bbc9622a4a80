"""The held-out report: the best soup beside the experts and the uniform soups, on the test split.

``final_rows`` scores every comparison row on dev (cached from the search) and on the
held-out test split — the only place the test split is ever used. ``write_outputs``
writes results.json, trials.csv, report.md, plots, ``best/`` and ``soup.yaml``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from rich.table import Table

from soup_search.atomic import atomic_file
from soup_search.errors import SoupSearchError
from soup_search.search.trial import evaluate_recipe, objective_value, soup_recipe

KINDS = ("soup", "expert", "uniform_all", "uniform_experts", "grid_best")


def best_trial(trials):
    """The highest dev value; ties go to the earliest trial."""
    if not trials:
        raise SoupSearchError("the search completed no trial; check the scorer logs and raise search.n_trials")
    return max(trials, key=lambda t: (t.value, -t.number))


def comparison_specs(session, space, analysis, best_params, grid_best_params):
    """(name, kind, recipe, weights) of every row of the comparison."""
    from soup_search.merge import MergeRecipe

    best_soup = space.soup(best_params)
    specs = [("best soup", "soup", soup_recipe(best_soup), best_soup)]
    for name in dict.fromkeys(analysis.experts.values()):
        specs.append((name, "expert", MergeRecipe.soup({name: 1.0}), {"all": {name: 1.0}}))
    names = list(session.pool.names)
    uniform = {n: 1.0 / len(names) for n in names}
    specs.append(("uniform_all", "uniform_all", MergeRecipe.soup(uniform), {"all": uniform}))
    k = len(space.groups)
    u_soup = space.soup(space.params_for([1.0 / k] * k))
    specs.append(("uniform_experts", "uniform_experts", soup_recipe(u_soup), u_soup))
    if grid_best_params is not None:
        g_soup = space.soup(grid_best_params)
        specs.append(("grid best", "grid_best", soup_recipe(g_soup), g_soup))
    return specs


def final_rows(session, space, analysis, storage_url, study, grid_study, console, progress=True):
    from soup_search.search.tuner import completed_trials, open_storage
    from soup_search.ui import trial_progress

    storage = open_storage(storage_url)
    best = best_trial(completed_trials(storage, study))
    grid_best = best_trial(completed_trials(storage, grid_study)).params if grid_study else None
    specs = comparison_specs(session, space, analysis, best.params, grid_best)
    ctx = session.context(space, stage="final")
    spec = session.spec

    def one(item, advance):
        name, kind, recipe, weights = item
        dev, _, _ = evaluate_recipe(recipe, ctx, "dev")
        test, _, _ = evaluate_recipe(recipe, ctx, "test", held_out=True)
        advance({})
        return {
            "name": name, "kind": kind, "recipe": recipe.model_dump(mode="json"), "weights": weights,
            "dev_mean": objective_value(spec, dev.per_category), "dev_per_category": dev.per_category,
            "test_mean": objective_value(spec, test.per_category), "test_per_category": test.per_category,
        }

    with trial_progress(console, "held-out evaluation", len(specs), progress) as advance, \
            ThreadPoolExecutor(max_workers=max(1, len(session.scorers.actors))) as pool:
        rows = list(pool.map(lambda item: one(item, advance), specs))
    return rows, {"trial": best.number, "params": best.params, "row": rows[0]}


def trial_records(session, space, storage_url, study, stage):
    """Every completed trial of a study with its params, soup weights and per-category dev scores."""
    import ray

    from soup_search.search.trial import weights_fingerprint
    from soup_search.search.tuner import completed_trials, open_storage

    out = []
    for t in completed_trials(open_storage(storage_url), study):
        soup = space.soup(t.params)
        recipe = soup_recipe(soup)
        cached = ray.get(session.store.lookup.remote(weights_fingerprint(recipe, session.candidate_fps),
                                                      session.spec.fingerprint(), "dev"))
        out.append({"number": t.number, "stage": stage, "params": t.params, "weights": soup,
                    "dev_mean": t.value, "dev_per_category": cached.per_category if cached else None})
    return out


def mergekit_recipe(recipe, pool) -> str:
    """The recipe with candidate names replaced by their checkpoint paths, as mergekit YAML."""
    from soup_search.merge import MergeRecipe

    data = recipe.model_dump(mode="json")
    for entry in data["models"]:
        entry["model"] = str(pool.candidate(entry["model"]).path)
    if data.get("base_model"):
        data["base_model"] = str(pool.candidate(data["base_model"]).path)
    return MergeRecipe.model_validate(data).to_yaml()


def comparison_table(rows) -> Table:
    """Dev and held-out test means of every row; per-category scores are in report.md and plots."""
    table = Table(title="held-out comparison (test split)")
    for col in ("name", "kind", "dev mean", "test mean", "vs best expert"):
        table.add_column(col, justify="left" if col in ("name", "kind") else "right")
    best_test = max(r["test_mean"] for r in rows)
    experts = [r["test_mean"] for r in rows if r["kind"] == "expert"]
    ref = max(experts) if experts else None
    for r in rows:
        mean = f"{r['test_mean']:.4f}"
        delta = "" if ref is None else f"{r['test_mean'] - ref:+.4f}"
        table.add_row(r["name"], r["kind"], f"{r['dev_mean']:.4f}",
                      f"[bold green]{mean}[/]" if r["test_mean"] == best_test else mean, delta)
    return table


def report_markdown(cfg, analysis, rows, best, timings) -> str:
    cats = list(analysis.categories)
    lines = [f"# soup-search report: {cfg.name}", "",
             f"Objective `{cfg.objective.name}`; sampler `{cfg.search.sampler}`, {cfg.search.n_trials} trials; "
             f"analysis `{analysis.grouping}` at τ = {analysis.tau:g} ({analysis.method}).", "",
             "## Experts", "", "| group | expert | alternates |", "|---|---|---|"]
    for g, e in analysis.experts.items():
        lines.append(f"| {g} | {e} | {', '.join(analysis.alternates.get(g, []))} |")
    lines += ["", "## Held-out comparison (test split)", "",
              "| name | kind | dev mean | test mean | " + " | ".join(cats) + " |",
              "|---|---|---|---|" + "---|" * len(cats)]
    for r in rows:
        lines.append(f"| {r['name']} | {r['kind']} | {r['dev_mean']:.4f} | {r['test_mean']:.4f} | "
                     + " | ".join(f"{r['test_per_category'].get(c, float('nan')):.3f}" for c in cats) + " |")
    weights = best["row"]["weights"]
    lines += ["", "## Best soup", "", f"Trial {best['trial']}; weights:", "", "```json",
              json.dumps(weights, indent=2), "```", "", "## Timings (s)", "",
              "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in timings.items()]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, cfg, session, frame: pd.DataFrame, analysis, space, storage_url, study,
                  grid_study, rows, best, stages, console) -> dict:
    from soup_search.atomic import atomic_dir
    from soup_search.plots import plot_comparison, plot_history, plot_weights

    out.mkdir(parents=True, exist_ok=True)
    trials = trial_records(session, space, storage_url, study, "search")
    if grid_study and grid_study != study:
        trials += trial_records(session, space, storage_url, grid_study, "grid")
    best_row = rows[0]
    recipe = soup_recipe(best_row["weights"])
    session.shards.merge_to_checkpoint(recipe, out / "best", tokenizer_src=session.pool.paths[0])
    stages.done("export")
    timings = stages.total()
    results = {
        "config": cfg.model_dump(mode="json"),
        "analysis": analysis.to_json(),
        "trials": trials,
        "best": {"trial": best["trial"], "params": best["params"], "recipe": best_row["recipe"],
                 "weights": best_row["weights"], "dev_mean": best_row["dev_mean"],
                 "test_mean": best_row["test_mean"], "test_per_category": best_row["test_per_category"]},
        "comparison": [{k: r[k] for k in ("name", "kind", "recipe", "weights", "dev_mean", "test_mean",
                                          "dev_per_category", "test_per_category")} for r in rows],
        "timings": timings,
    }
    with atomic_file(out / "results.json") as fh:
        json.dump(results, fh, indent=2)
    trial_frame = pd.DataFrame([{"number": t["number"], "stage": t["stage"], "dev_mean": t["dev_mean"],
                                 **{f"w[{m}]": w for m, w in t["weights"].get("all", {}).items()},
                                 **{f"p[{k}]": v for k, v in t["params"].items()},
                                 **{f"dev[{c}]": v for c, v in (t["dev_per_category"] or {}).items()}}
                                for t in trials])
    with atomic_file(out / "trials.csv") as fh:
        trial_frame.to_csv(fh, index=False, float_format="%.6g")
    with atomic_file(out / "soup.yaml") as fh:
        fh.write(mergekit_recipe(recipe, session.pool))
    with atomic_file(out / "report.md") as fh:
        fh.write(report_markdown(cfg, analysis, rows, best, timings))
    with atomic_file(out / "scores.csv") as fh:
        frame.to_csv(fh, float_format="%.6g")
    with atomic_dir(out / "plots") as tmp:
        plot_history(trials, tmp / "optimization_history.png")
        plot_weights(trials, tmp / "weights_vs_dev.png")
        plot_comparison(rows, list(analysis.categories), tmp / "comparison.png")
    console.print(comparison_table(rows))
    console.print(f"wrote {out}/results.json, report.md, trials.csv, soup.yaml, best/, plots/")
    return results
