"""``soup-search bench methods``: linear, TIES, TSV, WUDI and FDA on one pool, side by side.

The recipe, top to bottom: the config's zoo (its base and candidates) → every candidate scored on
the dev split → the SoCE analysis with the config's settings → its experts → per method, a recipe
of those experts with uniform weights (1 each) and the method's defaults (``base_model`` the
zoo's base where the method takes one; ``--param`` overrides) → the merge, by ``soup-search
merge``'s own function in a fresh Python process → the merged model scored on the held-out test
split.

Per method (per seed for a method with a ``seed`` parameter, fda):

- **test mean**: the search objective (the category-weighted mean over the search categories;
  held-out categories apart, as ``transfer``), with a 95% interval from the binomial variance of
  each category's accuracy (normal approximation, categories independent);
- **vs linear**: the paired difference with the linear soup on the same test examples, its
  stratified bootstrap 95% CI and paired permutation p-value (:mod:`soup_search.analysis.paired`);
- **merge seconds**: wall time around ``merge_to_disk`` inside that process (reading, merging and
  writing the checkpoint; not the process start or its imports), and the process's CPU seconds
  over the same span (one torch thread: on a loaded machine the wall time grows, the CPU time not);
- **peak memory**: the merging process's peak resident set during the merge (what ``soup-search
  merge`` of that recipe needs: Python, torch, and transformers for fda, included), and what the
  merge added to it (the peak minus the resident set just before the merge); see
  :mod:`soup_search.bench.timed_merge`.

The merges run one after another on the CPU, each in its own process, so one method's memory
never inflates another's figure.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from soup_search.analysis.informative import informative_categories
from soup_search.analysis.paired import PairedDelta, example_bits, paired_delta
from soup_search.analysis.soce import analyze
from soup_search.config import RunConfig, objective_params
from soup_search.errors import ConfigError, MergeError
from soup_search.io.checkpoint import CheckpointReader
from soup_search.merge import MergeRecipe
from soup_search.merge.registry import METHODS
from soup_search.objectives.base import weighted_mean
from soup_search.scoring.hf import HFScorer
from soup_search.scoring.protocol import ObjectiveSpec, ScoreResult
from soup_search.zoo import build_zoo

DEFAULT_METHODS = ("linear", "ties", "tsv", "wudi", "fda")
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval
MIB = 2**20


@dataclass(frozen=True)
class MethodRow:
    """One merge of the experts and its held-out figures."""

    method: str
    seed: int | None  # the method's seed (fda), else None
    test_mean: float
    ci_low: float
    ci_high: float
    transfer_mean: float | None  # the held-out categories' mean, if any
    test_per_category: dict[str, float]
    vs_linear: PairedDelta | None
    merge_s: float
    merge_cpu_s: float
    peak_mib: float
    merge_mib: float  # peak_mib minus the resident set just before the merge
    recipe: dict

    @property
    def label(self) -> str:
        return self.method if self.seed is None else f"{self.method} seed {self.seed}"

    def to_json(self) -> dict:
        data = asdict(self)
        data["vs_linear"] = self.vs_linear.to_json() if self.vs_linear else None
        return data


@dataclass(frozen=True)
class MethodsBench:
    """The pool, its experts and one row per merge."""

    config: str
    base: str
    experts: dict[str, str]  # group label -> expert name
    rows: tuple[MethodRow, ...]
    seconds: float

    def to_json(self) -> dict:
        return {"config": self.config, "base": self.base, "experts": dict(self.experts),
                "rows": [r.to_json() for r in self.rows], "seconds": self.seconds,
                "memory": "peak_mib: the merging process's peak RSS during the merge (VmHWM reset before it); "
                          "merge_mib: peak minus the RSS just before the merge",
                "ci": "test mean: binomial (normal approximation); vs_linear: paired stratified bootstrap"}


def parse_methods(text: str) -> list[str]:
    """``"linear,fda"`` -> the method names, each known and once; ConfigError otherwise."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    problems = [f"unknown merge method {m!r} (known: {', '.join(sorted(METHODS))})" for m in names if m not in METHODS]
    problems += [f"{m!r} is given twice" for m in dict.fromkeys(n for n in names if names.count(n) > 1)]
    if not names:
        problems.append("no methods given; use e.g. linear,ties,tsv,wudi,fda")
    problems += [f"{m} merges a fixed number of models, not the experts; leave it out"
                 for m in names if m in METHODS and METHODS[m].num_models is not None]
    if problems:
        raise ConfigError("--methods", problems)
    return names


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError("--seeds", [f"{text!r} must be distinct whole numbers >= 0, e.g. 0,1,2"])
    return seeds


def parse_params(items: Sequence[str], methods: Sequence[str]) -> dict[str, dict]:
    """``["fda.anchor_steps=20"]`` -> ``{"fda": {"anchor_steps": 20}}`` (values read as YAML)."""
    import yaml

    params: dict[str, dict] = {}
    problems = []
    for item in items:
        key, sep, value = item.partition("=")
        method, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            problems.append(f"{item!r} is not METHOD.KEY=VALUE (e.g. fda.anchor_steps=20)")
        elif method not in methods:
            problems.append(f"{item!r}: {method!r} is not among --methods {','.join(methods)}")
        else:
            params.setdefault(method, {})[name] = yaml.safe_load(value)
    if problems:
        raise ConfigError("--param", problems)
    return params


def method_recipes(methods: Sequence[str], experts: Sequence[Path], base: Path, seeds: Sequence[int],
                   params: Mapping[str, dict]) -> list[tuple[str, int | None, MergeRecipe]]:
    """(method, seed, recipe) per merge: the experts with weight 1, the base where the method takes one."""
    out = []
    for name in methods:
        method = METHODS[name]
        with_seed = any(p.name == "seed" for p in method.params)
        for seed in seeds if with_seed else [None]:
            extra = {**params.get(name, {}), **({"seed": seed} if seed is not None else {})}
            recipe = MergeRecipe.model_validate(
                {"models": [{"model": str(p), "parameters": {"weight": 1.0}} for p in experts],
                 "merge_method": name, "base_model": str(base) if method.base == "required" else None,
                 "parameters": extra}, context={"source": f"bench methods: {name}"})
            out.append((name, seed, recipe))
    return out


def binomial_interval(result: ScoreResult, categories: Sequence[str],
                      weights: Mapping[str, float] | None) -> tuple[float, float]:
    """95% interval of the weighted mean of per-category accuracies (normal approximation)."""
    w = {c: float((weights or {}).get(c, 1.0)) for c in categories}
    total = sum(w.values())
    mean = sum(w[c] * result.per_category[c] for c in categories) / total
    var = sum((w[c] / total) ** 2 * result.per_category[c] * (1 - result.per_category[c]) / result.counts[c]
              for c in categories)
    half = Z95 * math.sqrt(var)
    return max(0.0, mean - half), min(1.0, mean + half)


def merge_in_process(recipe: MergeRecipe, workdir: Path) -> tuple[Path, dict]:
    """Merge ``recipe`` into ``workdir/out`` in a fresh ``python -m soup_search.bench.timed_merge``;
    returns the output and its figures (seconds, cpu_seconds, rss_mib, peak_mib, peak_source)."""
    workdir.mkdir(parents=True, exist_ok=True)
    recipe_file, out = workdir / "recipe.yaml", workdir / "out"
    recipe_file.write_text(recipe.to_yaml())
    proc = subprocess.run([sys.executable, "-m", "soup_search.bench.timed_merge", str(recipe_file), str(out)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise MergeError(f"bench methods: the {recipe.merge_method} merge failed ({last}); "
                         f"run `soup-search merge {recipe_file} OUT` to see why")
    return out, json.loads(proc.stdout.strip().splitlines()[-1])


def run_methods_bench(cfg: RunConfig, work: Path, methods: Sequence[str] = DEFAULT_METHODS,
                      seeds: Sequence[int] = (0,), params: Mapping[str, dict] | None = None,
                      progress: Callable[[str], None] = lambda msg: None) -> MethodsBench:
    """Merge the config pool's SoCE experts by each method and score each merge on the test split."""
    if not cfg.candidates.zoo:
        raise ConfigError("bench methods", ["the config has no zoo (candidates.zoo): the bench needs the zoo's "
                                            "base model for the task-vector methods; use e.g. configs/demo.yaml"])
    start = time.perf_counter()
    zoo = build_zoo(size=cfg.candidates.zoo, seed=cfg.candidates.zoo_seed, progress=False)
    o = cfg.objective
    spec = ObjectiveSpec.of(o.name, objective_params(o.params, cfg.resolve), o.held_out_categories).with_data()
    objective = spec.build()
    scorer = HFScorer(zoo.base, device="cpu")
    dev = {}
    for name, path in zoo.candidates().items():
        progress(f"scoring {name} (dev)")
        dev[name] = _score(scorer, path, objective, "dev")
    frame = pd.DataFrame({name: r.per_category for name, r in dev.items()}).T
    frame = frame.drop(columns=[c for c in o.held_out_categories if c in frame.columns])
    a = cfg.analysis
    analysis = analyze(frame, categories=informative_categories(frame, a.categories).kept, method=a.method,
                       tau=a.tau, top_k=a.top_k, grouping=a.grouping)
    experts = list(dict.fromkeys(analysis.experts.values()))
    methods = sorted(methods, key=lambda m: m != "linear")  # linear first: every other row is paired with it
    merges = method_recipes(methods, [zoo.candidates()[e] for e in experts], zoo.base, seeds, params or {})
    rows: list[MethodRow] = []
    linear_bits = None
    for i, (name, seed, recipe) in enumerate(merges):
        progress(f"merging ({name}{'' if seed is None else f', seed {seed}'})")
        out, figures = merge_in_process(recipe, work / f"{i}-{name}")
        progress(f"scoring {name} (test)")
        test = _score(scorer, out, objective, "test", held_out=True)
        searched = [c for c in test.per_category if c not in spec.held_out_categories]
        held = [c for c in test.per_category if c in spec.held_out_categories]
        bits, labels = example_bits(test.correct, searched)
        if name == "linear" and linear_bits is None:
            linear_bits = bits
        vs = paired_delta(bits, linear_bits, labels, spec.category_weights) if linear_bits and name != "linear" else None
        low, high = binomial_interval(test, searched, spec.category_weights)
        rows.append(MethodRow(
            method=name, seed=seed, test_mean=weighted_mean({c: test.per_category[c] for c in searched},
                                                            spec.category_weights),
            ci_low=low, ci_high=high,
            transfer_mean=weighted_mean({c: test.per_category[c] for c in held}, spec.category_weights) if held else None,
            test_per_category=dict(test.per_category), vs_linear=vs, merge_s=round(figures["seconds"], 3),
            merge_cpu_s=round(figures["cpu_seconds"], 3),
            peak_mib=round(figures["peak_mib"], 1), merge_mib=round(figures["peak_mib"] - figures["rss_mib"], 1),
            recipe=recipe.to_dict()))
    return MethodsBench(config=cfg.name, base=str(zoo.base),
                        experts=dict(analysis.experts), rows=tuple(rows), seconds=round(time.perf_counter() - start, 1))


def _score(scorer: HFScorer, path: Path, objective, split: str, held_out: bool = False) -> ScoreResult:
    with CheckpointReader(path) as reader:
        scorer.load_weights((name, reader.get(name)) for name in reader.infos())
    return scorer.score(objective, split, held_out=held_out)

