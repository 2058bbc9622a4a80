"""The ``recur`` recipe, top to bottom: check the request → load the parent → surgery → train with
the curriculum → (train the non-recurrent control) → score the test split → write the checkpoint,
JSON, table and plot into the output folder (atomically).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoTokenizer

from soup_search.errors import ConfigError, ZooError
from soup_search.io.atomic import atomic_dir, check_target
from soup_search.objectives.toy import ToyObjective
from soup_search.recur.curriculum import Curriculum, parse_curriculum
from soup_search.recur.evaluate import accuracy_by_recurrence, held_out_accuracy
from soup_search.recur.report import MODEL_DIR, RecurResult, write_outputs
from soup_search.recur.surgery import check_split, load_parent, parse_split, retrofit, save_recurrent
from soup_search.recur.train import TrainSettings, train_recurrent, uniform_mixture
from soup_search.zoo.build import build_zoo, single_thread
from soup_search.zoo.train import CategoryData, train

ZOO_PREFIX = "zoo:"


@dataclass(frozen=True)
class RecurRequest:
    """A checked ``recur`` request: every option parsed into its value."""

    checkpoint: str
    split: tuple[int, int, int]
    curriculum_spec: str
    curriculum: Curriculum
    settings: TrainSettings
    out: Path
    backprop_depth: int = 8
    recurrences: tuple[int, ...] = tuple(range(1, 9))
    control: bool = True
    force: bool = False
    batch_size_eval: int = 256


def parse_recurrences(text: str) -> tuple[int, ...]:
    """``"1:8"`` (a range, both ends in) or ``"1,2,4,8"`` -> the recurrence counts to score."""
    try:
        if ":" in text:
            low, high = (int(v) for v in text.split(":"))
            values = tuple(range(low, high + 1))
        else:
            values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise ConfigError("--recurrences", [f"{text!r} is not a range A:B or a list of distinct counts >= 1; "
                                            "e.g. 1:8 or 1,2,4,8"])
    return values


def make_request(checkpoint: str, split: str, curriculum: str, steps: int, out: Path, *, seed: int = 0,
                 lr: float = 1e-3, batch_size: int = 64, backprop_depth: int = 8, recurrences: str = "1:8",
                 control: bool = True, force: bool = False) -> RecurRequest:
    """Parse and check every option; all problems are reported together in one line."""
    problems: list[str] = []
    parsed = {}
    for key, parse, text in (("split", parse_split, split), ("curriculum", parse_curriculum, curriculum),
                             ("recurrences", parse_recurrences, recurrences)):
        try:
            parsed[key] = parse(text)
        except ConfigError as err:
            problems += [f"--{key} {p}" if not p.startswith("--") else p for p in err.problems]
    for name, value, ok in (("--steps", steps, steps >= 1), ("--lr", lr, lr > 0),
                            ("--batch-size", batch_size, batch_size >= 1),
                            ("--backprop-depth", backprop_depth, backprop_depth >= 1)):
        if not ok:
            problems.append(f"{name} must be positive, got {value}")
    if problems:
        raise ConfigError("recur", problems)
    check_target(out, force)
    return RecurRequest(checkpoint=checkpoint, split=parsed["split"], curriculum_spec=curriculum,
                        curriculum=parsed["curriculum"], recurrences=parsed["recurrences"],
                        settings=TrainSettings(steps=steps, lr=lr, batch_size=batch_size, seed=seed),
                        out=Path(out), backprop_depth=backprop_depth, control=control, force=force)


def resolve_checkpoint(text: str) -> Path:
    """A checkpoint folder, or ``zoo:SIZE/NAME`` (e.g. ``zoo:default/base``: built if missing, cached)."""
    if not text.startswith(ZOO_PREFIX):
        return Path(text).expanduser()
    size, _, name = text[len(ZOO_PREFIX):].partition("/")
    zoo = build_zoo(size=size or "default", progress=True)
    models = zoo.models()
    if name not in models:
        raise ZooError(f"the {zoo.size} zoo has no model {name!r}; use one of {', '.join(models)}")
    return models[name]


def run_recur(request: RecurRequest, say: Callable[[str], None] = lambda _m: None) -> RecurResult:
    """Carry out ``request``; the output folder appears only when everything succeeded."""
    start = time.perf_counter()
    path = resolve_checkpoint(request.checkpoint)
    parent = load_parent(path).eval()
    check_split(request.split, parent.config.num_hidden_layers)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tokenizer.padding_side = "left"
    objective = ToyObjective(seed=0)
    data = CategoryData(tokenizer, objective.examples("train"))
    settings = request.settings
    model = retrofit(parent, request.split, num_recurrences=max(1, round(request.curriculum.final)),
                     backprop_depth=request.backprop_depth)
    say(f"training the recurrent model: {settings.steps} steps, {request.curriculum.describe()}")
    with single_thread():  # deterministic training; and one thread is faster for models this small
        log = train_recurrent(model, data, request.curriculum, settings)
        control = None
        if request.control:
            say(f"training the control: the parent, {settings.steps} steps on the same batches, no recurrence")
            control = copy.deepcopy(parent)
            train(control, data, uniform_mixture(data), steps=settings.steps, lr=settings.lr,
                  batch_size=settings.batch_size, seed=settings.seed, warmup=settings.warmup, floor=settings.floor)
        say(f"scoring the test split at {len(request.recurrences)} recurrence counts")
        batch = request.batch_size_eval
        result = RecurResult(
            parent=str(path), split=request.split, curriculum=request.curriculum_spec,
            curriculum_text=request.curriculum.describe(), final_mean=request.curriculum.final,
            settings=settings, train=log,
            parent_accuracy=held_out_accuracy(parent, tokenizer, objective, batch),
            control_accuracy=None if control is None else held_out_accuracy(control, tokenizer, objective, batch),
            by_recurrence=accuracy_by_recurrence(model, tokenizer, objective, request.recurrences, batch),
            seconds=time.perf_counter() - start,
        )
    with atomic_dir(request.out, overwrite=request.force) as tmp:
        save_recurrent(model, tokenizer, tmp / MODEL_DIR)
        write_outputs(result, tmp)
    return result
