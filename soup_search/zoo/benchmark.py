"""The toy benchmark written as files, the way a user's own benchmark looks: the local stand-in
of the README's "Souping your own models" recipe (no hub, no internet).

- ``jsonl``: one ``toy.jsonl``, a row per example (prompt, answer, category, split, and with
  ``choices`` the list of choices), read by the ``jsonl`` objective.
- ``lm-eval``: per category a task ``toy_<category>`` (its YAML, and a JSON-lines data file per
  split under ``data/``) and the group ``toy`` of them all, read by the ``lm_eval`` objective or
  by lm-eval itself (``--include_path``). Data paths in the YAMLs are absolute (datasets resolves
  relative ``data_files`` against the working directory), so the folder must not move.

Either way the objective serves the examples, prompts and scores of ``ToyObjective`` with the
same seed, sizes and ``choices``: :attr:`Benchmark.objective` is the config section that says so.
The folder is written atomically and refused where it holds files soup-search did not write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from soup_search.io.atomic import atomic_dir, check_target
from soup_search.objectives.toy import ToyObjective
from soup_search.zoo.model import ZooError

FORMATS = ("jsonl", "lm-eval")
JSONL_FILE = "toy.jsonl"
GROUP = "toy"
#: our split -> the lm-eval split name it is written as
LM_EVAL_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
#: where generation stops in the lm-eval tasks: a character the zoo's tokenizer spells and no toy
#: answer holds (lm-eval's default, a blank line, is no token of it)
STOP = "?"


@dataclass(frozen=True)
class Benchmark:
    """An exported benchmark: its folder, its files (relative to it), and the ``objective:``
    section of a config that reads it."""

    root: Path
    format: str
    files: tuple[str, ...]
    objective: dict[str, Any]


def write_benchmark(out: str | Path, fmt: str = "jsonl", seed: int = 0, choices: int = 0,
                    force: bool = False, **sizes: int) -> Benchmark:
    """Write the toy objective's examples (``seed``, ``sizes``: ``n_train``/``n_dev``/``n_test``,
    ``choices``) to the folder ``out`` as ``fmt`` files; ``force`` replaces an earlier export."""
    if fmt not in FORMATS:
        raise ZooError(f"unknown benchmark format {fmt!r}; use one of: {', '.join(FORMATS)}")
    toy = ToyObjective(seed=seed, choices=choices, **sizes)
    root = check_target(out, overwrite=force)  # absolute: the lm-eval YAMLs name their data by it
    write = _write_jsonl if fmt == "jsonl" else _write_lm_eval
    with atomic_dir(root, overwrite=force) as tmp:
        files, objective = write(toy, tmp, root)
    return Benchmark(root, fmt, tuple(files), objective)


def _examples(toy: ToyObjective, split: str, category: str) -> list:
    return toy.examples(split, [category], held_out=True)


def _write_lines(path: Path, rows: Sequence[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _write_jsonl(toy: ToyObjective, tmp: Path, root: Path) -> tuple[list[str], dict]:
    rows = []
    for split in LM_EVAL_SPLITS:
        for cat in toy.categories:
            for ex in _examples(toy, split, cat):
                row = {"prompt": ex.prompt, "answer": ex.answer, "category": cat, "split": split}
                rows.append({**row, "choices": list(ex.choices)} if ex.choices else row)
    _write_lines(tmp / JSONL_FILE, rows)
    params = {"path": str(root / JSONL_FILE), "max_new_tokens": toy.max_new_tokens,
              "target_delimiter": toy.prompting.target_delimiter,
              "fewshot_delimiter": toy.prompting.fewshot_delimiter}
    if toy.choices:
        params["choices_field"] = "choices"
    return [JSONL_FILE], {"name": "jsonl", "params": params}


def _write_lm_eval(toy: ToyObjective, tmp: Path, root: Path) -> tuple[list[str], dict]:
    files, tasks = [], []
    for cat in toy.categories:
        data = {}
        for split, lm_split in LM_EVAL_SPLITS.items():
            name = f"data/{cat}-{split}.jsonl"
            _write_lines(tmp / name, [_document(ex) for ex in _examples(toy, split, cat)])
            files.append(name)
            data[lm_split] = str(root / name)
        task = f"{GROUP}_{cat}"
        (tmp / f"{task}.yaml").write_text(yaml.safe_dump(_task(toy, task, data), sort_keys=False))
        files.append(f"{task}.yaml")
        tasks.append(task)
    metric = "acc" if toy.choices else "exact_match"
    group = {"group": GROUP, "task": tasks,
             "aggregate_metric_list": [{"metric": metric, "aggregation": "mean", "weight_by_size": False}],
             "metadata": {"version": 1.0}}
    (tmp / f"{GROUP}.yaml").write_text(yaml.safe_dump(group, sort_keys=False))
    files.append(f"{GROUP}.yaml")
    return files, {"name": "lm_eval", "params": {"tasks": [GROUP], "include_path": str(root)}}


def _document(ex) -> dict:
    doc = {"prompt": ex.prompt, "answer": ex.answer}
    return {**doc, "choices": list(ex.choices), "label": ex.choices.index(ex.answer)} if ex.choices else doc


def _task(toy: ToyObjective, name: str, data_files: dict[str, str]) -> dict:
    """One category's lm-eval task config: toy prompts, delimiters and answer length."""
    task = {"task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": data_files},
            **{f"{'training' if s == 'train' else s}_split": s for s in data_files},
            "doc_to_text": "{{prompt}}",
            "target_delimiter": toy.prompting.target_delimiter,
            "fewshot_delimiter": toy.prompting.fewshot_delimiter}
    if toy.choices:
        task |= {"output_type": "multiple_choice", "doc_to_choice": "choices", "doc_to_target": "label",
                 "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]}
    else:
        task |= {"output_type": "generate_until", "doc_to_target": "answer",
                 "generation_kwargs": {"until": [STOP], "max_gen_toks": toy.max_new_tokens, "do_sample": False},
                 "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}]}
    return {**task, "metadata": {"version": 1.0}}
