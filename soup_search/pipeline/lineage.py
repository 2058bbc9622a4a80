"""Stage 5b, for a child search (``lineage:``): read the parent run, carry its trials over into
this run's trial log, pick the seeds, and sum it up for results.json.

The carried trials are written to the trial log as cached rows of the ``search`` stage (their
timings name the parent study and trial), once: a resumed run finds them there. The tuner then
adds them to the Optuna study as it adds any logged row the study lacks
(:func:`~soup_search.search.tuner.prepare_study`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from soup_search.config import RESULTS, RunConfig
from soup_search.engine.session import Session
from soup_search.errors import ConfigError, SoupSearchError
from soup_search.pipeline.state import study_name
from soup_search.scoring.protocol import ScoreResult
from soup_search.search.baselines import soup_key
from soup_search.search.lineage import (
    CARRIED_FROM, PARENT_TRIAL, CarryOver, ParentRun, carry_over, newcomers, seed_points,
)
from soup_search.search.space import SearchSpace
from soup_search.search.trial import soup_recipe


@dataclass(frozen=True)
class LineagePlan:
    """What a child search takes from its parent: the carried trials and the seeds."""

    parent: ParentRun
    carry: CarryOver
    seeds: tuple[dict, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lineage:
    """results.json's ``lineage``: where the run started from and what that saved."""

    parent: str
    parent_study: str
    carried: int
    seeded: int
    #: trials evaluated in this run's search stage (seeds included, carried trials not)
    fresh: int
    skipped: int
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"parent": self.parent, "parent_study": self.parent_study, "carried": self.carried,
                "seeded": self.seeded, "fresh": self.fresh, "skipped": self.skipped, "notes": list(self.notes)}

    def line(self) -> str:
        return (f"child of {self.parent} (study {self.parent_study}): trials {self.carried} carried over, "
                f"{self.seeded} seeded, {self.fresh} fresh; {self.skipped} of the parent's skipped")


def read_parent(cfg: RunConfig) -> ParentRun:
    """The parent run of ``cfg`` from its results.json, with its search space rebuilt."""
    path = cfg.resolve(cfg.lineage.parent) / RESULTS
    fix = "point lineage.parent at the --out folder of a finished run"
    try:
        data = json.loads(path.read_text())
        parent_cfg = RunConfig.model_validate(data["config"])
        s, a = parent_cfg.search, data["analysis"]
        space = SearchSpace.from_analysis(a["experts"], a["alternates"], s.min_weight, s.per_module, weights=s.weights)
        return ParentRun.from_results(str(path.parent), data, study_name(parent_cfg), space)
    except (OSError, ValueError, KeyError, TypeError, ValidationError, SoupSearchError) as exc:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ConfigError(str(path), [f"not a readable soup-search results file ({reason}); {fix}"]) from None


def plan_lineage(cfg: RunConfig, session: Session, space: SearchSpace) -> LineagePlan:
    """The parent's trials this run carries over (``lineage.carry_over``) and the seeds."""
    lin, parent = cfg.lineage, read_parent(cfg)
    if lin.carry_over:
        carry = carry_over(parent, space, session.candidate_fps, session.spec.fingerprint())
    else:
        carry = CarryOver(skipped=len(parent.trials), notes=("carry-over is off (lineage.carry_over: false)",))
    seeds = seed_points(parent, space, session.candidate_fps, lin.seed_top_k, known=[t.params for t in carry.trials])
    new = newcomers(parent, session.candidate_fps)
    return LineagePlan(parent, carry, tuple(seeds), notes=(f"newcomers: {', '.join(new)}",) if new else ())


def log_carried(session: Session, plan: LineagePlan, stage: str = "search") -> int:
    """Write the trial log row of each carried trial not logged yet; returns how many it wrote."""
    logged = {r["timings"].get(PARENT_TRIAL) for r in session.evaluations(stage) if r["timings"].get(CARRIED_FROM)}
    written = 0
    for t in plan.carry.trials:
        if t.parent_trial in logged:
            continue
        recipe = soup_recipe(t.soup).model_dump(mode="json")
        result = ScoreResult(per_category=dict(t.dev_per_category), counts={})
        session.record(stage, dict(t.params), recipe, t.soup, "dev", result, t.dev_mean,
                       {CARRIED_FROM: plan.parent.study, PARENT_TRIAL: t.parent_trial}, True)
        written += 1
    return written


def summarize(plan: LineagePlan, evaluations: list[dict], space: SearchSpace) -> Lineage:
    """The lineage of a finished search, from its plan and its trial log (``seeded``: the seeds
    it evaluated, which a budget smaller than the seeds cuts short)."""
    fresh = [r for r in evaluations if r["stage"] == "search" and not (r["timings"] or {}).get(CARRIED_FROM)]
    evaluated = {soup_key(space, r["params"]) for r in fresh}
    return Lineage(parent=plan.parent.folder, parent_study=plan.parent.study, carried=len(plan.carry.trials),
                   seeded=sum(soup_key(space, p) in evaluated for p in plan.seeds), fresh=len(fresh),
                   skipped=plan.carry.skipped, notes=plan.carry.notes + plan.notes)
