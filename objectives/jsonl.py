"""``jsonl``: the user's own benchmark, read from local JSONL, CSV or Parquet files.

Every row has a prompt, a reference answer and a category, and optionally a split
(``train``/``dev``/``test``; ``validation`` and ``val`` mean ``dev``), and with
``choices_field`` a list of choices (multiple choice: the answer is the correct choice's text or
its 0-based index; a CSV cell holds the list as JSON). Rows without a split
are split here, per category: their distinct prompts are ordered by a stable hash of
``(seed, prompt)`` and cut by ``test_fraction`` and ``dev_fraction``. The split is thus
deterministic, stratified by category and disjoint (a prompt never lands in two splits).

Files are read with HF ``datasets`` from local paths only (no hub), cached under
``soup_search.io.paths.cache_dir("datasets")``. Everything is read and checked when the
objective is built, so a bad file fails before any search starts.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from soup_search.objectives.base import SPLITS, Example, Objective
from soup_search.objectives.matching import get_matcher
from soup_search.errors import ObjectiveError
from soup_search.io.paths import cache_dir

#: file suffix -> HF datasets packaged builder
FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
SPLIT_ALIASES = {"validation": "dev", "valid": "dev", "val": "dev"}
DEFAULT_SPLIT_FIELD = "split"
#: one row of a data file: prompt, answer, category, split (None: split here), choices (() for generated answers)
Row = tuple[str, str, str, "str | None", tuple[str, ...]]


class JsonlObjective(Objective):
    name = "jsonl"

    def __init__(self, path: str | Sequence[str], prompt_field: str = "prompt",
                 answer_field: str = "answer", category_field: str | None = "category",
                 split_field: str | None = DEFAULT_SPLIT_FIELD, scoring: str = "exact_match",
                 category_weights: Mapping[str, float] | None = None, seed: int = 0,
                 dev_fraction: float = 0.2, test_fraction: float = 0.2, max_new_tokens: int = 32,
                 name: str = "jsonl", categories: Sequence[str] | None = None, choices_field: str | None = None):
        self.name = name
        get_matcher(scoring)  # fail on a bad name before reading any file
        if max_new_tokens <= 0:
            raise ObjectiveError(f"objective {name!r}: max_new_tokens must be > 0, got {max_new_tokens}")
        if not (0 <= test_fraction and 0 <= dev_fraction and dev_fraction + test_fraction <= 1):
            raise ObjectiveError(
                f"objective {name!r}: dev_fraction={dev_fraction} and test_fraction={test_fraction} must be "
                "in [0, 1] with a sum of at most 1; e.g. dev_fraction: 0.2, test_fraction: 0.2")
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.paths = _resolve_paths(path)
        fields = (prompt_field, answer_field, category_field, split_field, choices_field)
        rows = [row for p in self.paths for row in _read_rows(p, *fields)]

        found = list(dict.fromkeys(r[2] for r in rows))
        if categories is not None:
            categories = [categories] if isinstance(categories, str) else list(dict.fromkeys(categories))
            unknown = sorted(set(categories) - set(found))
            if unknown or not categories:
                raise ObjectiveError(
                    f"objective {name!r}: categories {unknown or '[]'} are not in {_names(self.paths)}; "
                    f"use some of {found}")
            rows = [r for r in rows if r[2] in set(categories)]
        super().__init__(categories if categories is not None else found,
                         scoring=scoring, category_weights=category_weights)

        by_category: dict[str, list[Row]] = {c: [] for c in self.categories}
        for row in rows:
            by_category[row[2]].append(row)
        self._splits: dict[str, list[Example]] = {s: [] for s in SPLITS}
        for cat, cat_rows in by_category.items():
            given = {r[0]: r[3] for r in cat_rows if r[3] is not None}
            free = [r[0] for r in cat_rows if r[3] is None and r[0] not in given]
            assigned = {**seeded_split(free, seed, dev_fraction, test_fraction), **given}
            for prompt, answer, _, split, choices in cat_rows:
                self._splits[split or assigned[prompt]].append(Example(prompt, answer, cat, choices))
        no_dev = [c for c in self.categories if not any(ex.category == c for ex in self._splits["dev"])]
        if no_dev:
            raise ObjectiveError(
                f"objective {name!r}: categories {no_dev} have no dev examples in {_names(self.paths)}; "
                "SoCE needs a dev score per category: add rows, raise dev_fraction or mark rows split=dev")

    def _load(self, split: str) -> list[Example]:
        return self._splits[split]


def seeded_split(prompts: Sequence[str], seed: int, dev_fraction: float,
                 test_fraction: float) -> dict[str, str]:
    """Map each distinct prompt to a split: order by a stable hash of (seed, prompt), then cut."""
    def key(prompt: str) -> tuple[bytes, str]:
        return hashlib.blake2b(f"{seed}\0{prompt}".encode(), digest_size=8).digest(), prompt

    unique = sorted(set(prompts), key=key)
    n = len(unique)
    n_test = min(n, int(n * test_fraction + 0.5))
    n_dev = min(n - n_test, int(n * dev_fraction + 0.5))
    return {p: "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
            for i, p in enumerate(unique)}


def _resolve_paths(path: str | Sequence[str]) -> list[Path]:
    raw = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not raw:
        raise ObjectiveError("jsonl objective: no data file given; set path: to a .jsonl, .csv or .parquet file")
    paths = [Path(p).expanduser().resolve() for p in raw]
    for p in paths:
        if not p.is_file():
            raise ObjectiveError(f"data file {p} does not exist; set the objective's path to an existing file")
        if p.suffix.lower() not in FORMATS:
            raise ObjectiveError(
                f"data file {p} has unsupported extension {p.suffix!r}; use one of {', '.join(FORMATS)}")
    return paths


def _read_rows(path: Path, prompt_field: str, answer_field: str, category_field: str | None,
               split_field: str | None, choices_field: str | None) -> list[Row]:
    """(prompt, answer, category, split or None, choices) for every row of one file, checked."""
    columns, records = _read_table(path)
    options = {"prompt_field": prompt_field, "answer_field": answer_field, "category_field": category_field,
               "choices_field": choices_field}
    if split_field != DEFAULT_SPLIT_FIELD:
        options["split_field"] = split_field  # a split field the user named must be there
    for option, field in options.items():
        if field is not None and field not in columns:
            raise ObjectiveError(
                f"data file {path} has no column {field!r}; its columns are {columns}: "
                f"rename the column or set the objective's {option}")
    has_split = split_field is not None and split_field in columns
    rows = []
    for i, rec in enumerate(records, start=1):
        prompt, answer = _text(rec[prompt_field]), _text(rec[answer_field])
        category = _text(rec[category_field]).strip() if category_field else "all"
        for field, value in ((prompt_field, prompt), (answer_field, answer), (category_field, category)):
            if not value.strip():
                raise ObjectiveError(f"data file {path}, row {i}: {field!r} is empty; fill it in or drop the row")
        split = _text(rec[split_field]).strip().lower() if has_split else ""
        split = SPLIT_ALIASES.get(split, split)
        if split and split not in SPLITS:
            raise ObjectiveError(
                f"data file {path}, row {i}: {split_field!r} is {rec[split_field]!r}; "
                f"use one of {', '.join(SPLITS)} or leave it empty for a seeded split")
        choices = _choices(rec[choices_field], path, i, choices_field) if choices_field else ()
        if choices:
            answer = _correct_choice(answer, choices, path, i, answer_field)
        rows.append((prompt, answer, category, split or None, choices))
    return rows


def _choices(value: Any, path: Path, row: int, field: str) -> tuple[str, ...]:
    """A row's choices: a list (JSON, Parquet) or a JSON array in a text cell (CSV); two or more."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, (list, tuple)) or len(value) < 2 or not all(_text(v).strip() for v in value):
        raise ObjectiveError(f"data file {path}, row {row}: {field!r} must be a list of two or more non-empty "
                             'choices, e.g. ["Paris", "Rome"]; fix the row')
    return tuple(_text(v) for v in value)


def _correct_choice(answer: str, choices: tuple[str, ...], path: Path, row: int, field: str) -> str:
    """The correct choice's text: the answer itself, or the choice at the answer's 0-based index."""
    if answer in choices:
        return answer
    if answer.strip().isdigit() and int(answer) < len(choices):
        return choices[int(answer)]
    raise ObjectiveError(f"data file {path}, row {row}: {field!r} is {answer!r}, neither one of the row's choices "
                         f"nor a 0-based index below {len(choices)}; give the correct choice's text or index")


def _read_table(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    import datasets

    fmt = FORMATS[path.suffix.lower()]
    empty = ObjectiveError(f"data file {path} has no rows; add examples or remove it from path:")
    kwargs: dict[str, Any] = {}
    if fmt == "parquet":
        if _parquet_rows(path) == 0:
            raise empty
    else:
        _check_utf8(path)
        with path.open(encoding="utf-8") as fh:
            lines = list(itertools.islice((line for line in fh if line.strip()), 2))
        if len(lines) <= (1 if fmt == "csv" else 0):
            raise empty
    if fmt == "csv":  # read every column as text so that answers like "007" or "1.50" stay as written
        header = next(csv.reader(lines))
        kwargs["features"] = datasets.Features({c: datasets.Value("string") for c in header})
    try:
        with quiet_datasets(datasets):
            ds = datasets.load_dataset(fmt, data_files=[str(path)], split="train", keep_in_memory=True,
                                       cache_dir=str(cache_dir("datasets")), **kwargs)
            if len(ds) == 0:
                raise empty
            return list(ds.column_names), ds.to_list()
    except ObjectiveError:
        raise
    except Exception as exc:  # parse errors, or text a Parquet file stores that is not UTF-8
        raise _unreadable(path, fmt, exc) from exc


def _check_utf8(path: Path) -> None:
    """Refuse a text file with a byte that is not UTF-8, naming the line."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ObjectiveError(
                    f"data file {path}, line {number}: byte {line[err.start:err.start + 1]!r} at column "
                    f"{err.start + 1} is not UTF-8 text; save the file as UTF-8") from None


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception as exc:
        raise _unreadable(path, "parquet", exc) from exc


@contextlib.contextmanager
def quiet_datasets(datasets):
    """No progress bars or error logs from datasets: errors are raised as ObjectiveError instead."""
    bars_off, verbosity = datasets.are_progress_bars_disabled(), datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    try:
        yield
    finally:
        datasets.logging.set_verbosity(verbosity)
        if not bars_off:
            datasets.enable_progress_bars()


def _text(value: Any) -> str:
    """A cell as text: None or NaN -> "", 12.0 -> "12" (numbers in JSON/Parquet answers), else str()."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _unreadable(path: Path, fmt: str, exc: BaseException) -> ObjectiveError:
    """One line from the innermost cause (datasets wraps parse errors in a vague one)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return ObjectiveError(f"cannot read data file {path} as {fmt}: {detail}; fix the file's format")


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in paths)
