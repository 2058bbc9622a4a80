"""``soup-search bench lineage``: what a child search saves by starting from its parent.

Per seed, on a config's toy zoo (configs/tiny.yaml by default): the **parent** searches every zoo
candidate but one (the newcomer, a different one per seed), then the **child** searches all of
them twice — (a) with ``lineage`` (the parent's trials carried over, its best seeded) and (b)
without. The figure is the number of fresh trials each child evaluated before a complete trial
first reached the parent's best dev score: 0 when a carried trial already holds it, None
(not reached) when none did within ``search.n_trials``.

All runs share the one score cache, as a service's searches do: the child without lineage may be
answered by the cache for soups the parent (or the other child) scored; such cache hits are
counted and reported beside the trials, which count either way.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from soup_search.config import CandidatesConfig, LineageConfig, RunConfig
from soup_search.engine.run_store import read_evaluations
from soup_search.errors import ConfigError
from soup_search.pipeline.progress import SILENT, Progress
from soup_search.pipeline.run import run_pipeline
from soup_search.pipeline.state import STATE
from soup_search.search.lineage import CARRIED_FROM
from soup_search.zoo import build_zoo


@dataclass(frozen=True)
class Arm:
    """One child search: its lineage counts and what it took to reach the parent's best."""

    fresh: int
    #: fresh trials evaluated until a complete trial reached the parent's best (0: a carried one did)
    to_reach: int | None
    #: fresh search trials the score cache answered (no scoring)
    cache_hits: int
    best: float
    search_s: float
    carried: int = 0
    seeded: int = 0


@dataclass(frozen=True)
class SeedResult:
    seed: int
    newcomer: str
    parent_trials: int
    parent_best: float
    with_lineage: Arm
    without: Arm


def fresh_to_reach(rows: Sequence[dict], target: float) -> int | None:
    """Fresh trials of a search's log rows (in the order they finished) up to and including the
    first complete one reaching ``target``; 0 when a carried row reaches it, None when none does."""
    spent = 0
    for row in rows:
        timings = row["timings"] or {}
        spent += 0 if timings.get(CARRIED_FROM) else 1
        if not timings.get("pruned") and row["value"] >= target - 1e-9:
            return spent
    return None


def _arm(result, out: Path, target: float) -> Arm:
    rows = read_evaluations(out / STATE / "run.sqlite", "search")
    fresh = [r for r in rows if not (r["timings"] or {}).get(CARRIED_FROM)]
    lin = result.lineage
    return Arm(fresh=len(fresh), to_reach=fresh_to_reach(rows, target), cache_hits=sum(r["cached"] for r in fresh),
               best=result.best.dev_mean, search_s=result.timings.get("search", 0.0),
               carried=lin.carried if lin else 0, seeded=lin.seeded if lin else 0)


def _variant(cfg: RunConfig, name: str, paths: Sequence[str], seed: int, n_trials: int,
             parent: Path | None = None) -> RunConfig:
    return cfg.model_copy(update={
        "name": name, "candidates": CandidatesConfig(paths=[str(p) for p in paths]),
        "search": cfg.search.model_copy(update={"seed": seed, "n_trials": n_trials}),
        "lineage": LineageConfig(parent=str(parent)) if parent is not None else None,
    })


def run_lineage_bench(cfg: RunConfig, seeds: Sequence[int], n_trials: int, out: Path | None = None,
                      progress: Progress = SILENT) -> list[SeedResult]:
    """Parent, child with lineage and child without, per seed; the runs are kept under ``out``."""
    if not cfg.candidates.zoo:
        raise ConfigError("bench lineage", ["the config takes no zoo candidates (candidates.zoo); "
                                            "use configs/tiny.yaml or another zoo config"])
    zoo = build_zoo(size=cfg.candidates.zoo, seed=cfg.candidates.zoo_seed, progress=progress is not SILENT)
    models = {name: str(path) for name, path in zoo.candidates().items()}
    names = list(models)
    work = Path(out) if out else Path(tempfile.mkdtemp(prefix="soup-bench-lineage-"))
    results = []
    for seed in seeds:
        newcomer = names[-1 - seed % len(names)]
        folder = work / f"seed-{seed}"
        parent_out = folder / "parent"
        parent = run_pipeline(_variant(cfg, f"lineage-parent-s{seed}", [models[n] for n in names if n != newcomer],
                                       seed, n_trials), parent_out, progress, fresh=True)
        target = parent.best.dev_mean
        arms = {}
        for arm, lineage in (("without", None), ("with", parent_out)):
            child_out = folder / f"child-{arm}"
            child = run_pipeline(_variant(cfg, f"lineage-child-{arm}-s{seed}", list(models.values()), seed, n_trials,
                                          lineage), child_out, progress, fresh=True)
            arms[arm] = _arm(child, child_out, target)
        results.append(SeedResult(seed=seed, newcomer=newcomer,
                                  parent_trials=sum(t.stage == "search" for t in parent.trials),
                                  parent_best=target, with_lineage=arms["with"], without=arms["without"]))
    return results


def to_json(results: Sequence[SeedResult]) -> dict:
    return {"seeds": [asdict(r) for r in results]}
