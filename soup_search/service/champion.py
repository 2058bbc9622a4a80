"""A watch's champion: the artifacts of its promoted search, with their provenance.

``DATA_DIR/watches/<id>/champion/`` holds soup.yaml, results.json, per_example.json, report.md,
a model card (README.md), provenance.json and, unless the watch opts out, the merged checkpoint
``best/``. A promotion replaces the folder in one rename, so a reader sees the old champion or
the new one, never a mix.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from soup_search.io.atomic import atomic_dir
from soup_search.merge import MergeRecipe
from soup_search.merge.card import model_card

FILES = ("soup.yaml", "results.json", "per_example.json", "report.md")
PROVENANCE = "provenance.json"


def champion_dir(watch_dir: Path) -> Path:
    return watch_dir / "champion"


def provenance(results: dict, search_id: str, revision: dict | None, lineage: list[str], decision: dict) -> dict:
    """Where the champion comes from: its parents with their fingerprints and weights, the
    source revision, the chain of searches, and its per-category dev and test scores."""
    best = results["best"]
    candidates = results.get("candidates") or {}
    weights = best["weights"].get("all") or {}
    parents = [{"name": name, "weight": weights.get(name), "path": (candidates.get(name) or {}).get("path"),
                "fingerprint": (candidates.get(name) or {}).get("fingerprint")}
               for name in sorted({m for per in best["weights"].values() for m in per})]
    row = results["comparison"][0]
    return {
        "search": search_id, "lineage": lineage, "parents": parents, "weights": best["weights"],
        "source_revision": (revision or {}).get("id"), "objective_revision": results.get("objective_revision"),
        "per_category": {c: {"dev": row["dev_per_category"].get(c), "test": row["test_per_category"].get(c)}
                         for c in row["test_per_category"]},
        "dev_mean": row["dev_mean"], "test_mean": row["test_mean"], "decision": decision,
    }


def promote(watch_dir: Path, run_dir: Path, results: dict, record: dict, keep_checkpoint: bool = True) -> Path:
    """Make ``run_dir``'s best soup (``results``: its results.json) the champion; returns the champion folder."""
    target = champion_dir(watch_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    recipe = MergeRecipe.model_validate(results["best"]["recipe"])
    sources = {name: (info or {}).get("path", "") for name, info in (results.get("candidates") or {}).items()}
    with atomic_dir(target, overwrite=True) as tmp:
        for name in FILES:
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, tmp / name)
        if keep_checkpoint and (run_dir / "best").is_dir():
            shutil.copytree(run_dir / "best", tmp / "best")
        (tmp / "README.md").write_text(model_card(recipe, sources) + _provenance_section(record))
        (tmp / PROVENANCE).write_text(json.dumps(record, indent=2))
    return target


def _provenance_section(record: dict) -> str:
    lines = ["## Provenance", "", f"- search: `{record['search']}` (lineage: {' → '.join(record['lineage'])})",
             f"- source revision: `{record['source_revision']}`",
             f"- objective revision: `{record['objective_revision']}`", "",
             "| category | dev | test |", "|---|---|---|"]
    lines += [f"| {c} | {v['dev']:.4f} | {v['test']:.4f} |" for c, v in record["per_category"].items()
              if v["dev"] is not None and v["test"] is not None]
    return "\n".join(lines) + "\n"


def read_champion(watch_dir: Path) -> dict | None:
    path = champion_dir(watch_dir) / PROVENANCE
    return json.loads(path.read_text()) if path.is_file() else None
