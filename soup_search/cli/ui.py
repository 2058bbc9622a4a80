"""Rich progress for long work (profiling, trials, final evaluation)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextlib.contextmanager
def trial_progress(console, description: str, total: int, enabled: bool = True) -> Iterator[Callable[[dict], None]]:
    """A progress bar; yields ``advance(result)`` which also shows the best ``dev_mean`` so far."""
    best = {"value": None}
    lock = threading.Lock()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[best]}")]
    with Progress(*columns, console=console, disable=not enabled, transient=False) as bar:
        task = bar.add_task(description, total=total, best="")

        def advance(result: dict) -> None:
            with lock:
                if isinstance(result, dict) and "resumed" in result:
                    bar.update(task, advance=result["resumed"], description=f"{description} (resumed)")
                    return
                value = result.get("dev_mean") if isinstance(result, dict) else None
                if value is not None and (best["value"] is None or value > best["value"]):
                    best["value"] = value
                label = f"best dev {best['value']:.4f}" if best["value"] is not None else ""
                bar.update(task, advance=1, best=label)

        yield advance


class RichProgress:
    """The pipeline's :class:`~soup_search.pipeline.progress.Progress`, drawn with rich on ``console``."""

    def __init__(self, console, enabled: bool = True):
        self.console = console
        self.enabled = enabled

    def task(self, description: str, total: int):
        return trial_progress(self.console, description, total, self.enabled)

    def note(self, text: str) -> None:
        self.console.print(text)
