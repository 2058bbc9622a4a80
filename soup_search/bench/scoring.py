"""``soup-search bench scoring``: multiple-choice scoring against generation, on the zoo, on the CPU.

The recipe: the zoo (``--size``) → one HF scorer built from its base → for each model of the zoo
(base and experts) its weights loaded in place → the toy objective's dev split scored ``repeats``
times per mode:

- **generate**: greedy answers of at most ``max_new_tokens`` tokens (the objective's default);
- **choices N**: the same examples as multiple choice with N choices (the answer among N − 1
  other answers of its category), ranked by the summed log-likelihood (one forward pass per
  choice, no generation).

Per mode: examples per second with a 95% t-interval over every (model, repeat) timing, the tokens
fed to the model per example, and the accuracy (mean over models). The speed-up of each
multiple-choice mode over generation is paired per (model, repeat) and given with its t-interval.
Throughput depends on the machine and its load; the JSON keeps the load average.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from soup_search.analysis.intervals import mean_interval
from soup_search.io.checkpoint import CheckpointReader
from soup_search.objectives import get_objective
from soup_search.scoring.hf import HFScorer
from soup_search.scoring.prompts import continuation_ids, prompt_ids
from soup_search.zoo import build_zoo


@dataclass(frozen=True)
class ModeFigures:
    mode: str
    examples: int
    examples_per_s: float
    ci_low: float
    ci_high: float
    tokens_fed_per_example: float
    accuracy: float
    #: examples per second of this mode over generation's, paired per (model, repeat); None for generate
    speedup: float | None = None
    speedup_ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class ScoringBench:
    size: str
    models: list[str]
    repeats: int
    n_dev: int
    threads: int
    modes: list[ModeFigures]
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)


def tokens_fed(scorer: HFScorer, objective) -> float:
    """Prompt (and continuation) tokens the model reads per example of the dev split."""
    examples, tok = objective.examples("dev"), scorer.tokenizer
    total = 0
    for ex in examples:
        context = len(prompt_ids(tok, objective, ex))
        total += sum(context + len(continuation_ids(tok, objective.prompting, c)) for c in ex.choices) or context
    return total / len(examples)


def run_scoring_bench(size: str, choices: Sequence[int], repeats: int, n_dev: int, threads: int,
                      progress: Callable[[str], None] = lambda _: None) -> ScoringBench:
    start = time.perf_counter()
    zoo = build_zoo(size=size, progress=False)
    models = {"base": zoo.base, **zoo.experts}
    modes = {"generate": get_objective("toy", n_dev=n_dev)}
    modes |= {f"choices {n}": get_objective("toy", n_dev=n_dev, choices=n) for n in choices}
    scorer = HFScorer(zoo.base, threads=threads)
    rates: dict[str, list[float]] = {m: [] for m in modes}
    accuracy: dict[str, list[float]] = {m: [] for m in modes}
    for name, path in models.items():
        with CheckpointReader(path) as reader:
            scorer.load_weights((n, reader.get(n)) for n in reader.tensor_names)
        for r in range(repeats):  # (modes interleaved: a change of machine load hits them alike)
            for mode, objective in modes.items():
                progress(f"bench scoring: {name}, {mode}, repeat {r + 1}/{repeats}")
                result = scorer.score(objective, "dev")
                rates[mode].append(result.n / result.seconds)
                accuracy[mode].append(result.mean)
    figures = []
    for mode, objective in modes.items():
        low, high = mean_interval(rates[mode])
        speedup = ci = None
        if mode != "generate":
            ratios = [a / b for a, b in zip(rates[mode], rates["generate"], strict=True)]
            speedup, ci = statistics.fmean(ratios), mean_interval(ratios)
        figures.append(ModeFigures(mode, len(objective.examples("dev")), statistics.fmean(rates[mode]), low, high,
                                   tokens_fed(scorer, objective), statistics.fmean(accuracy[mode]), speedup, ci))
    return ScoringBench(size, list(models), repeats, n_dev, threads, figures, time.perf_counter() - start)
