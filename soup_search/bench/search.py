"""``soup-search bench search``: dev examples a search scores before it first reaches the paper
grid's best dev score, per (experts, sampler, weight map, pruning), over seeds; and the per-trial overhead.

On a config's candidates (the demo's by default) it profiles and analyses once, then for each
pool size k it keeps the **k groups whose experts score best on their own group** (the analysis
at tau = 1, so that every informative category is a group; a group whose expert another kept
group already has is passed over while others remain). The space is the weights of those k
experts — the grid's own space, without the choice among alternates that a run's space adds.
It evaluates the paper's exhaustive grid on that space, and runs each search method once per seed until a complete trial reaches the
grid's best (or the budget, the grid's size in trials, runs out).

The unit of cost is dev examples scored. A trial costs the examples it scored (a pruned one,
those of its chunks); a soup another study already scored costs what it cost there, as if the
bench's shared score cache were not there, so the order of the studies changes nothing. One
exception: a soup of one candidate alone (an expert, enqueued as a baseline) costs nothing, as
in a run, where the score cache answers it: the profile scored every candidate on the whole dev
split, and the grid needs that profile too (it picks the grid's experts). The per-trial overhead
is a trial's wall time minus its scoring time (the scorer's loop over the examples), over the
trials really scored, with its parts: the wait for a scorer from the free list (a round trip:
the search runs one trial per scorer, so a scorer is free unless a give-back is still on its
way), the recipe, cache lookup and merge before it, and the rest (the scorer calls, the
weights' load, the trial's own work).

Scores go to a private cache in the bench folder, so earlier runs never make it look fast.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from soup_search.analysis.paired import PairedDelta, example_bits, paired_delta
from soup_search.analysis.soce import Analysis
from soup_search.config import RunConfig
from soup_search.engine.session import open_session
from soup_search.errors import ConfigError
from soup_search.pipeline.candidate_set import load_config_candidates
from soup_search.pipeline.progress import SILENT, Progress
from soup_search.pipeline.run import profile_and_analyze
from soup_search.search.baselines import baseline_points
from soup_search.search.grid import simplex_grid
from soup_search.search.space import SearchSpace
from soup_search.search.trial import TrialContext, evaluate_recipe, trial_recipe
from soup_search.search.tuner import run_study


@dataclass
class Pool:
    """One restricted search space and its paper grid."""

    experts: int
    groups: list[str]
    models: list[str]
    grid_points: int
    grid_best: float
    examples_per_trial: int
    #: the grid's best soup against the uniform soup (the first soup a search scores), paired on dev:
    #: how far the target stands above where every search starts, with its uncertainty
    best_vs_uniform: PairedDelta | None = None

    @property
    def grid_examples(self) -> int:
        return self.grid_points * self.examples_per_trial


def _median(values: Sequence[int | None]) -> float | None:
    """The median, a seed that never reached the target counting as infinitely costly (None: never)."""
    m = statistics.median([math.inf if v is None else v for v in values])
    return None if math.isinf(m) else m


def _worst(values: Sequence[int | None]) -> int | None:
    """The largest cost, None if any seed never reached the target."""
    return None if None in values else max(values)


@dataclass
class MethodRow:
    """One search method on one pool: per seed, the cost of first reaching the grid's best (None: never)."""

    experts: int
    sampler: str
    weights: str
    prune: bool
    examples: list[int | None]
    trials: list[int | None]
    grid_examples: int

    @property
    def median_examples(self) -> float | None:
        return _median(self.examples)

    @property
    def worst_examples(self) -> int | None:
        return _worst(self.examples)

    def chunks_label(self, chunks: int) -> str:
        return f"{chunks} chunks" if self.prune else "no"

    @property
    def median_trials(self) -> float | None:
        return _median(self.trials)

    @property
    def worst_trials(self) -> int | None:
        return _worst(self.trials)


@dataclass
class SearchBench:
    pools: list[Pool]
    rows: list[MethodRow]
    seeds: list[int]
    concurrency: int
    chunks: int
    trials_scored: int
    trial_s_mean: float
    scoring_s_mean: float
    #: waiting for a scorer from the free list
    wait_s_mean: float
    #: trial wall − scoring
    overhead_s_mean: float
    overhead_fraction: float
    #: the trial's start until it holds a scorer and merged weights, less the wait: recipe, cache lookup, merge
    merge_s_mean: float
    #: from one trial's end (``trial_s``) to the start of the next on the same trial actor, median:
    #: the trial's log and report, and Tune's turn (searcher, scheduler, the next trial's start)
    between_s_median: float = 0.0
    #: the scorers' scoring time over (scorers × each stage's wall): how busy they were
    scorers_busy: float = 0.0
    notes: list[str] = field(default_factory=list)


def first_reach(values: list[float], target: float, tol: float = 1e-9) -> int | None:
    """1-based index of the first value reaching ``target`` (None if never)."""
    for i, v in enumerate(values, 1):
        if v >= target - tol:
            return i
    return None


def one_candidate(row: dict) -> bool:
    """Whether a log row's soup is one candidate alone (every module's weight on one model)."""
    return len({m for per in row["weights"].values() for m, w in per.items() if w > 0}) == 1


def cost_to_reach(rows: Sequence[dict], target: float) -> tuple[int | None, int | None]:
    """(dev examples, trials) a study's log rows, in the order they finished, spent up to and
    including the first complete trial reaching ``target``; (None, None) if none did. A soup of
    one candidate alone costs no examples: the profile scored it (see the module doc)."""
    spent = 0
    for i, row in enumerate(rows, 1):
        spent += 0 if one_candidate(row) else sum(row["counts"].values())
        if not row["timings"].get("pruned") and row["value"] >= target - 1e-9:
            return spent, i
    return None, None


def soups_compared(ctx: TrialContext, a: dict, b: dict) -> PairedDelta:
    """Soup ``a`` against soup ``b`` (params of ``ctx.space``) on dev, example by example (each
    scored once: the score cache answers what a trial scored; never logged as a trial)."""
    a_result, _, _ = evaluate_recipe(trial_recipe(ctx.space, a), ctx)
    b_result, _, _ = evaluate_recipe(trial_recipe(ctx.space, b), ctx)
    categories = list(a_result.correct)
    a_bits, labels = example_bits(a_result.correct, categories)
    b_bits, _ = example_bits(b_result.correct, categories)
    return paired_delta(a_bits, b_bits, labels, ctx.spec.category_weights)


def pick_groups(analysis: Analysis, k: int) -> list[str]:
    """The k groups whose experts score best on their own group, distinct experts first."""
    ranked = sorted(analysis.experts, key=lambda g: (-analysis.expert_scores[g], g))
    picked, models = [], set()
    for g in ranked:
        if analysis.experts[g] not in models:
            picked.append(g)
            models.add(analysis.experts[g])
    picked += [g for g in ranked if g not in picked]
    if len(picked) < k:
        raise ConfigError("bench search", [f"--experts {k}: the analysis has only {len(picked)} groups; "
                                           "ask for fewer experts"])
    return picked[:k]


def pool_space(cfg: RunConfig, analysis: Analysis, k: int, weights: str) -> SearchSpace:
    """The weights of the k groups' experts: the grid's own space (no choice among alternates)."""
    groups = pick_groups(analysis, k)
    return SearchSpace.from_analysis({g: analysis.experts[g] for g in groups}, {},
                                     cfg.search.min_weight, cfg.search.per_module, weights=weights)


def run_search_bench(cfg: RunConfig, progress: Progress = SILENT, seeds: Sequence[int] = (0, 1, 2),
                     experts: Sequence[int] = (3,), samplers: Sequence[str] = ("tpe",),
                     prunes: Sequence[bool] = (True, False), weights: Sequence[str] = ("stick",),
                     budget: int | None = None, keep: Path | None = None) -> SearchBench:
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="soup-bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(work / 'optuna.sqlite').resolve()}"
    # every informative category is a group; the pools are cut from these groups
    cfg = cfg.model_copy(update={"analysis": cfg.analysis.model_copy(update={"tau": 1.0})})
    candidates = load_config_candidates(cfg, progress=progress is not SILENT)
    conc, chunks = cfg.resources.scorers, cfg.search.chunks
    pools, rows = [], []
    with open_session(cfg, candidates, work, score_cache=work / "scores.sqlite") as session:
        _, analysis, _, _ = profile_and_analyze(cfg, session, work, progress)

        def study(space, stage, n, sampler, seed, points, prune, stop_at=None):
            ctx = TrialContext.of(session, space, stage, chunks=chunks if prune else 1)
            with progress.task(stage, n) as advance:
                run_study(ctx, storage_url=url, study_name=stage, n_trials=n, sampler=sampler, seed=seed,
                          points=points, concurrency=conc, tune_dir=work / "tune", on_trial=advance,
                          prune=prune, stop_at=stop_at)
            return session.evaluations(stage)

        for k in experts:
            space = pool_space(cfg, analysis, k, "stick")
            grid = [space.params_for(list(w)) for w in simplex_grid(k)]
            logged = study(space, f"grid-{k}", len(grid), "grid", 0, grid, prune=False)
            best = max(logged, key=lambda r: r["value"])
            pool = Pool(experts=k, groups=list(space.groups), models=[analysis.experts[g] for g in space.groups],
                        grid_points=len(grid), grid_best=best["value"],
                        examples_per_trial=sum(logged[0]["counts"].values()),
                        best_vs_uniform=soups_compared(TrialContext.of(session, space), best["params"],
                                                       space.params_for([1.0 / k] * k)))
            pools.append(pool)
            for sampler in samplers:
                for wmap in weights:
                    space = pool_space(cfg, analysis, k, wmap)
                    for prune in prunes:
                        costs = [cost_to_reach(study(space, f"{sampler}-{wmap}-{'prune' if prune else 'full'}-k{k}-s{seed}",
                                                     budget or len(grid), sampler, seed, baseline_points(space),
                                                     prune, stop_at=pool.grid_best), pool.grid_best)
                                 for seed in seeds]
                        rows.append(MethodRow(k, sampler, wmap, prune, [c[0] for c in costs], [c[1] for c in costs],
                                              pool.grid_examples))
        scored = [r for r in session.evaluations() if r["stage"] != "profile" and not r["cached"]]
    trial_s = [r["timings"]["trial_s"] for r in scored]
    scoring_s = [r["timings"]["scoring_s"] for r in scored]
    wait_s = [r["timings"].get("wait_s", 0.0) for r in scored]
    overhead = [t - s for t, s in zip(trial_s, scoring_s)]
    mean = statistics.fmean
    return SearchBench(
        pools=pools, rows=rows, seeds=list(seeds), concurrency=conc, chunks=chunks, trials_scored=len(scored),
        trial_s_mean=mean(trial_s), scoring_s_mean=mean(scoring_s), wait_s_mean=mean(wait_s),
        overhead_s_mean=mean(overhead), overhead_fraction=sum(overhead) / sum(trial_s),
        merge_s_mean=mean(r["timings"].get("merge_s", 0.0) - r["timings"].get("wait_s", 0.0) for r in scored),
        between_s_median=statistics.median(between_trials(scored) or [0.0]), scorers_busy=scorers_busy(scored, conc),
    )


def between_trials(rows: Sequence[dict]) -> list[float]:
    """Seconds from each trial's end to the next trial's start on the same trial actor (process),
    within a stage."""
    runs: dict[tuple, list[tuple[float, float]]] = {}
    for r in rows:
        t = r["timings"]
        runs.setdefault((r["stage"], t["pid"]), []).append((t["started"], t["started"] + t["trial_s"]))
    gaps = []
    for spans in runs.values():
        spans.sort()
        gaps += [nxt[0] - end for (_, end), nxt in zip(spans, spans[1:])]
    return gaps


def scorers_busy(rows: Sequence[dict], scorers: int) -> float:
    """The share of the scorers' time spent scoring, over each stage's wall (first start to last end)."""
    stages: dict[str, list[dict]] = {}
    for r in rows:
        stages.setdefault(r["stage"], []).append(r["timings"])
    wall = sum(max(t["started"] + t["trial_s"] for t in ts) - min(t["started"] for t in ts) for ts in stages.values())
    return sum(t["scoring_s"] for ts in stages.values() for t in ts) / (scorers * wall) if wall > 0 else 0.0


def to_json(bench: SearchBench) -> dict:
    out = asdict(bench)
    for row, data in zip(bench.rows, out["rows"]):
        data.update(median_examples=row.median_examples, worst_examples=row.worst_examples,
                    median_trials=row.median_trials, worst_trials=row.worst_trials)
    for pool, data in zip(bench.pools, out["pools"]):
        data["grid_examples"] = pool.grid_examples
    return out
