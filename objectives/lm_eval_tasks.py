"""Loading lm-evaluation-harness tasks offline, for the ``lm_eval`` objective.

lm-eval (the ``lm-eval`` extra) is imported here only, when the objective is built. Tasks load
with the HF hub switched off (a dataset must be local files or already in the HF datasets cache)
and with lm-eval's and datasets' logging kept off the console; every failure becomes one
:class:`ObjectiveError` line naming the task and the fix.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from soup_search.errors import ObjectiveError
from soup_search.objectives.jsonl import quiet_datasets

#: the lm-eval version this objective is written and tested against
LM_EVAL_VERSION = "0.4.13"
INSTALL_HINT = "pip install 'soup-search[lm-eval]'"
_OFFLINE_ENV = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")


def import_task_manager():
    """lm-eval's ``TaskManager``, or an error with the install hint."""
    try:
        with quiet_logging():
            from lm_eval.tasks import TaskManager
    except ImportError:
        raise ObjectiveError(f"the lm_eval objective needs lm-evaluation-harness {LM_EVAL_VERSION}; "
                             f"install it with {INSTALL_HINT}") from None
    return TaskManager


def load_tasks(names: Sequence[str], include_path: str | Sequence[str] | None = None) -> dict[str, Any]:
    """The leaf tasks of ``names`` (tasks, groups or tags; a group gives each of its tasks), by
    task name, in the order asked. Built-in tasks are indexed only when a name is not among the
    ``include_path`` folders' tasks (indexing lm-eval's thousands of YAML files takes seconds)."""
    TaskManager = import_task_manager()
    paths = _include_paths(include_path)
    with quiet_logging():
        manager = TaskManager(include_path=paths, include_defaults=False) if paths else None
        if manager is None or any(n not in manager.all_tasks for n in names):
            manager = TaskManager(include_path=paths or None)
    unknown = [n for n in names if n not in manager.all_tasks and not Path(n).is_file()]
    if unknown:
        raise ObjectiveError(f"unknown lm-eval task {unknown[0]!r}{_close(unknown[0], manager.all_tasks)}; "
                             "use a name from `lm-eval ls tasks`, or set include_path: to the folder of its YAML")
    tasks: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name in names:
        for task_name, task in _load_one(manager, name).items():
            if task_name in owner:
                raise ObjectiveError(f"lm-eval task {task_name!r} comes from both {owner[task_name]!r} and "
                                     f"{name!r}; list it once")
            owner[task_name], tasks[task_name] = name, task
    return tasks


def _load_one(manager, name: str) -> dict[str, Any]:
    try:
        with offline():
            return dict(manager.load([name])["tasks"])
    except Exception as exc:  # lm-eval and datasets raise many kinds; each becomes one line
        raise _load_error(name, exc) from exc


def _load_error(name: str, exc: BaseException) -> ObjectiveError:
    text = str(exc)
    if isinstance(exc, ValueError) and "must have valid or test docs" in text:
        return ObjectiveError(f"lm-eval task {name!r} has neither a validation_split nor a test_split; set one "
                              "in its YAML (the search scores the validation split, the final report the test split)")
    if isinstance(exc, KeyError):
        return ObjectiveError(f"lm-eval task {name!r} names a split or column its data lacks ({text}); fix the "
                              "task's validation_split/test_split/training_split or its data files")
    detail = (text.strip().splitlines() or [type(exc).__name__])[0][:200]
    return ObjectiveError(f"cannot load lm-eval task {name!r} offline: {detail}; point its "
                          "dataset_kwargs.data_files at local files, or download the dataset into the HF cache first")


def _include_paths(include_path: str | Sequence[str] | None) -> list[str]:
    raw = [include_path] if isinstance(include_path, (str, os.PathLike)) else list(include_path or [])
    paths = [str(Path(p).expanduser()) for p in raw]
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise ObjectiveError(f"lm_eval include_path {missing[0]} does not exist; set include_path: to a folder "
                             "of lm-eval task YAML files")
    return paths


def _close(name: str, known: Sequence[str]) -> str:
    near = difflib.get_close_matches(name, known, n=3)
    return f" (did you mean {', '.join(map(repr, near))}?)" if near else ""


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """No hub access while tasks load: the environment and the flags datasets and huggingface_hub
    read at import, all restored after; datasets' progress bars and logs off."""
    import datasets
    import huggingface_hub.constants as hub

    saved_env = {k: os.environ.get(k) for k in _OFFLINE_ENV}
    saved = (datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, hub.HF_HUB_OFFLINE)
    os.environ.update({k: "1" for k in _OFFLINE_ENV})
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = hub.HF_HUB_OFFLINE = True
    try:
        with quiet_datasets(datasets), quiet_logging():
            yield
    finally:
        datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, hub.HF_HUB_OFFLINE = saved
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def quiet_logging() -> Iterator[None]:
    """lm-eval's loggers (warnings about defaulted metrics and generation options) kept quiet."""
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
