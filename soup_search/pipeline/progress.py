"""How the pipeline reports progress without knowing who shows it.

The pipeline calls a :class:`Progress`; the CLI passes one that draws rich bars
(:class:`soup_search.cli.ui.RichProgress`), tests and services pass :data:`SILENT`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import ContextManager, Protocol

#: called once per finished unit of work with its result (``{"dev_mean": ...}``), or
#: ``{"resumed": n}`` when ``n`` units were already done by an earlier run
Advance = Callable[[dict], None]


class Progress(Protocol):
    def task(self, description: str, total: int) -> ContextManager[Advance]:
        """A unit of long work with ``total`` steps; yields the function that advances it."""

    def note(self, text: str) -> None:
        """A one-line remark for the user (rich markup allowed)."""


class Silent:
    """Shows nothing."""

    @contextlib.contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        yield lambda result: None

    def note(self, text: str) -> None:
        pass


SILENT = Silent()
