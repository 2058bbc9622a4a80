"""``lm_eval``: lm-evaluation-harness tasks as an objective (the ``lm-eval`` extra, lm-eval 0.4.13).

lm-eval gives the task definitions, prompts and metrics; our scorers answer. Each leaf task is
a category (a group gives each of its tasks, e.g. MMLU's subjects). Per document:

- the prompt is the task's ``description`` (rendered for the document) then ``doc_to_text``;
- ``multiple_choice``: the choices are ``doc_to_choice``, the answer the target's choice, and a
  chosen choice is right when it is a target (accuracy; the scorer ranks by ``choice_norm``:
  ``none`` is lm-eval's ``acc``, ``chars`` its ``acc_norm``, set when every task's first metric
  is ``acc_norm``);
- ``generate_until``: the answer is ``doc_to_target``; a generated answer passes the task's first
  filter and is scored by ``process_results`` on the task's first metric (e.g. ``exact_match``).

Splits: ``validation_split`` is ``dev``, ``test_split`` is ``test``, ``training_split`` (else a
``fewshot_split`` that is neither) is ``train``, where few-shot examples come from. A task with
one of the two evaluation splits is cut here into dev and test (``dev_fraction`` of its distinct
prompts to dev, by ``seed``), and :attr:`notes` says so. ``limit`` keeps the first N documents of
each task in each split. The prompting defaults come from the tasks (delimiters, ``num_fewshot``,
``generation_kwargs.until`` as stop strings, ``max_gen_toks``); where tasks differ the first
task's value is used and a note says so. Few-shot examples come before the description here, not
after it as in lm-eval; with ``fewshot: 0`` the prompt text is lm-eval's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from soup_search.errors import ObjectiveError
from soup_search.objectives.base import SPLITS, Example, Objective
from soup_search.objectives.jsonl import seeded_split
from soup_search.objectives.lm_eval_tasks import quiet_logging, load_tasks
from soup_search.objectives.prompting import Prompting

OUTPUT_TYPES = ("generate_until", "multiple_choice")
#: a multiple-choice task's first metric -> how the scorer ranks its choices
CHOICE_METRICS = {"acc": "none", "acc_norm": "chars"}
#: first metrics of a generation task that say right (1) or wrong (0) per document
GENERATE_METRICS = ("exact_match", "acc", "em")
DEFAULT_MAX_GEN_TOKS = 256


class LmEvalObjective(Objective):
    name = "lm_eval"

    def __init__(self, tasks: str | Sequence[str], include_path: str | Sequence[str] | None = None,
                 limit: int | None = None, seed: int = 0, dev_fraction: float = 0.5,
                 category_weights: Mapping[str, float] | None = None, name: str = "lm_eval"):
        self.name = name
        names = [tasks] if isinstance(tasks, str) else list(dict.fromkeys(tasks or []))
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ObjectiveError(f"objective {name!r}: tasks is {tasks!r}; give a list of lm-eval task names")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
            raise ObjectiveError(f"objective {name!r}: limit is {limit!r}; use a whole number > 0, or leave it out")
        if not 0 < dev_fraction < 1:
            raise ObjectiveError(f"objective {name!r}: dev_fraction is {dev_fraction!r}; use a number between 0 "
                                 "and 1 (the share of a one-split task that goes to dev)")
        self.seed, self.limit, self.dev_fraction = seed, limit, dev_fraction
        self.tasks = load_tasks(names, include_path)
        self.metrics = {t: _first_metric(t, task) for t, task in self.tasks.items()}
        super().__init__(list(self.tasks), category_weights=category_weights)
        self._splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
        #: each example's task and document (the first document of examples that are equal)
        self._docs: dict[Example, tuple[Any, dict]] = {}
        notes: list[str] = []
        with quiet_logging():
            for category, task in self.tasks.items():
                notes += self._add_task(category, task)
        with_train = {ex.category for ex in self._splits["train"]}
        self.prompting, prompting_notes, self.max_new_tokens = _prompting(name, self.tasks, self.metrics,
                                                                          sorted(with_train))
        self.notes = tuple(notes + prompting_notes)

    def _load(self, split: str) -> list[Example]:
        return self._splits[split]

    def _add_task(self, category: str, task) -> list[str]:
        """Put one task's documents into the splits; the notes that makes."""
        cfg, notes = task.config, []
        pairs = {"dev": self._pairs(category, task, cfg.validation_split),
                 "test": self._pairs(category, task, cfg.test_split)}
        if not (cfg.validation_split and cfg.test_split):
            one = cfg.validation_split or cfg.test_split
            every = pairs["dev"] or pairs["test"]
            assigned = seeded_split([ex.prompt for ex, _ in every], self.seed, self.dev_fraction,
                                    1 - self.dev_fraction)
            pairs = {s: [p for p in every if assigned[p[0].prompt] == s] for s in ("dev", "test")}
            notes.append(f"lm-eval task {category!r} has one evaluation split ({one!r}); soup-search split it "
                         f"into dev ({self.dev_fraction:g} of its distinct prompts) and test, seed {self.seed}")
        train = cfg.training_split or cfg.fewshot_split
        if train not in (None, cfg.validation_split, cfg.test_split):
            pairs["train"] = self._pairs(category, task, train)
        if not pairs["dev"]:
            raise ObjectiveError(f"lm-eval task {category!r} has no dev documents; give it more documents, or "
                                 "raise dev_fraction where it has one evaluation split")
        for split, got in pairs.items():
            for ex, doc in got[:self.limit]:
                self._splits[split].append(ex)
                self._docs.setdefault(ex, (task, doc))
        return notes

    def _pairs(self, category: str, task, split: str | None) -> list[tuple[Example, dict]]:
        if not split:
            return []
        docs = {task.config.validation_split: task.validation_docs, task.config.test_split: task.test_docs,
                task.config.training_split: task.training_docs}.get(split)
        docs = docs() if docs is not None else task.fewshot_docs()
        return [(_example(category, task, doc), doc) for doc in docs]

    def score_example(self, example: Example, prediction: str) -> float:
        """1.0 when lm-eval counts ``prediction`` right: a target choice (multiple choice), or the
        task's first metric on the filtered answer (generation)."""
        found = self._docs.get(example)
        if found is None:
            raise ObjectiveError(f"objective {self.name!r} has no example {example.prompt[:40]!r} in category "
                                 f"{example.category!r}; score examples of this objective only")
        task, doc = found
        if example.choices:
            return float(prediction in _targets(task, doc, example.choices))
        with quiet_logging():
            responses = [[prediction]]  # one document's responses, as lm-eval's filters take them
            for make in task._filters[0].filters:
                responses = list(make().apply(responses, [doc]))
            value = task.process_results(doc, [responses[0]])[self.metrics[example.category]]
        return float(value)


def _example(category: str, task, doc: dict) -> Example:
    text = task.doc_to_text(doc)
    if not isinstance(text, str):
        raise ObjectiveError(f"lm-eval task {category!r} gives one prompt per choice (doc_to_text is a choice "
                             "index), which soup-search cannot score; drop the task")
    prompt = (task.resolve_field(doc, task.config.description) or "") + text
    if task.OUTPUT_TYPE == "multiple_choice":
        choices = tuple(str(c) for c in task.doc_to_choice(doc))
        return Example(prompt, _targets(task, doc, choices)[0], category, choices)
    target = task.doc_to_target(doc)
    if task.config.doc_to_choice is not None and isinstance(target, int):
        target = task.doc_to_choice(doc)[target]
    return Example(prompt, str(target[0] if isinstance(target, list) else target), category)


def _targets(task, doc: dict, choices: Sequence[str]) -> list[str]:
    """The right choices of a multiple-choice document (several where its target is a list)."""
    target = task.doc_to_target(doc)
    picked = [choices[t] if isinstance(t, int) and 0 <= t < len(choices) else str(t)
              for t in (target if isinstance(target, list) else [target])]
    right = [c for c in picked if c in choices]
    if not right:
        raise ObjectiveError(f"lm-eval task {task.task_name!r}: a document's target {target!r} is not among its "
                             f"choices {list(choices)[:6]}; fix doc_to_target or doc_to_choice")
    return right


def _first_metric(name: str, task) -> str:
    output_type = task.OUTPUT_TYPE
    if output_type not in OUTPUT_TYPES:
        raise ObjectiveError(f"lm-eval task {name!r} has output_type {output_type!r}; the lm_eval objective "
                             f"supports {' and '.join(OUTPUT_TYPES)}")
    if task.config.gen_prefix:
        raise ObjectiveError(f"lm-eval task {name!r} sets gen_prefix, which the lm_eval objective does not "
                             "support; remove it from the task's YAML")
    metric = next(iter(task._metric_fn_list), None)
    allowed = tuple(CHOICE_METRICS) if output_type == "multiple_choice" else GENERATE_METRICS
    if metric not in allowed:
        raise ObjectiveError(f"lm-eval task {name!r} has the first metric {metric!r}, not a right-or-wrong score "
                             f"per document; list one of {', '.join(allowed)} first in its metric_list")
    return metric


def _prompting(owner: str, tasks: Mapping[str, Any], metrics: Mapping[str, str], with_train: Sequence[str]):
    """The objective's :class:`Prompting`, the notes on where tasks disagree, and max_new_tokens
    (``with_train``: the tasks that have train examples to show as few-shot examples)."""
    notes = []
    wanting = [t for t, task in tasks.items() if (task.config.num_fewshot or 0) and t not in with_train]
    shots = not wanting
    if wanting:
        notes.append(f"lm-eval tasks {wanting} ask for few-shot examples but have no training_split or "
                     "fewshot_split apart from their evaluation splits; soup-search shows none (fewshot: 0)")

    def common(label: str, values: dict[str, Any]) -> Any:
        first = next(iter(values.values()))
        if any(v != first for v in values.values()):
            notes.append(f"the lm-eval tasks differ in {label} ({values}); the objective uses {first!r} for all")
        return first

    cfgs = {t: task.config for t, task in tasks.items()}
    generate = {t: c.generation_kwargs or {} for t, c in cfgs.items() if c.output_type == "generate_until"}
    norms = {t: CHOICE_METRICS[m] for t, m in metrics.items() if m in CHOICE_METRICS
             and cfgs[t].output_type == "multiple_choice"}
    prompting = Prompting.of(
        owner,
        target_delimiter=common("target_delimiter", {t: c.target_delimiter for t, c in cfgs.items()}),
        fewshot_delimiter=common("fewshot_delimiter", {t: c.fewshot_delimiter for t, c in cfgs.items()}),
        fewshot=common("num_fewshot", {t: c.num_fewshot or 0 for t, c in cfgs.items()}) if shots else 0,
        stop=common("generation_kwargs.until", {t: _strings(g.get("until")) for t, g in generate.items()})
        if generate else (),
        choice_norm=common("choice ranking (first metric acc or acc_norm)", norms) if norms else "none",
    )
    max_new = max((int(g.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS)) for g in generate.values()),
                  default=DEFAULT_MAX_GEN_TOKS)
    return prompting, notes, max_new


def _strings(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())
