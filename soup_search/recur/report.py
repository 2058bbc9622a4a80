"""The result of a ``recur`` run, and its three renderings: JSON, a CSV table and a PNG plot.

:class:`RecurResult` is the one record of a run; the JSON, the table rows and the plot are all
read from it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from matplotlib.figure import Figure

from soup_search.recur.evaluate import Accuracy
from soup_search.recur.train import TrainLog, TrainSettings

JSON_FILE, TABLE_FILE, PLOT_FILE, MODEL_DIR = "recurrence.json", "recurrence.csv", "recurrence.png", "model"


@dataclass(frozen=True)
class RecurResult:
    """What a run did (parent, split, curriculum, training) and the test accuracies it measured."""

    parent: str
    split: tuple[int, int, int]
    curriculum: str
    curriculum_text: str
    final_mean: float
    settings: TrainSettings
    train: TrainLog
    parent_accuracy: Accuracy
    #: the parent trained the same steps on the same batches without recurrence (None: not run)
    control_accuracy: Accuracy | None
    by_recurrence: dict[int, Accuracy]
    seconds: float

    @property
    def reference(self) -> tuple[str, Accuracy]:
        """What each recurrent row is compared with: the control (the same training without
        recurrence) when it ran, else the parent."""
        if self.control_accuracy is not None:
            return "control", self.control_accuracy
        return "parent", self.parent_accuracy

    def rows(self) -> list[dict]:
        """One table row per measured model: parent, control, then the recurrent model at each r,
        the recurrent rows with their paired difference from :attr:`reference`."""
        named = [("parent", None, self.parent_accuracy)]
        if self.control_accuracy is not None:
            named.append((f"parent + {self.settings.steps} steps", None, self.control_accuracy))
        named += [("recurrent", r, acc) for r, acc in self.by_recurrence.items()]
        rows = []
        ref_name, ref = self.reference
        for model, r, acc in named:
            low, high = acc.ci
            delta = acc.minus(ref) if r is not None else None
            rows.append({"model": model, "recurrences": "" if r is None else r, "accuracy": round(acc.value, 4),
                         "ci95_low": round(low, 4), "ci95_high": round(high, 4), "correct": acc.correct,
                         "n": acc.n, f"vs_{ref_name}": "" if delta is None else round(delta.delta, 4),
                         f"vs_{ref_name}_ci95_low": "" if delta is None else round(delta.ci_low, 4),
                         f"vs_{ref_name}_ci95_high": "" if delta is None else round(delta.ci_high, 4),
                         f"vs_{ref_name}_p": "" if delta is None else round(delta.p_value, 4),
                         **{c: round(v, 4) for c, v in acc.per_category.items()}})
        return rows

    def to_json(self) -> dict:
        return {
            "parent": self.parent, "split": list(self.split), "curriculum": self.curriculum,
            "curriculum_text": self.curriculum_text, "final_mean_recurrences": self.final_mean,
            "settings": asdict(self.settings), "train": self.train.to_json(),
            "parent_test": self.parent_accuracy.to_json(),
            "control_test": None if self.control_accuracy is None else self.control_accuracy.to_json(),
            "compared_with": self.reference[0],
            "recurrent_test": [{"recurrences": r, **acc.to_json(), "vs_reference": acc.minus(self.reference[1]).to_json()}
                               for r, acc in self.by_recurrence.items()],
            "seconds": round(self.seconds, 2),
        }


def write_outputs(result: RecurResult, folder: Path) -> None:
    """``recurrence.json``, ``recurrence.csv`` and ``recurrence.png`` into ``folder``."""
    (folder / JSON_FILE).write_text(json.dumps(result.to_json(), indent=2) + "\n")
    rows = result.rows()
    with (folder / TABLE_FILE).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot_recurrence(result, folder / PLOT_FILE)


def plot_recurrence(result: RecurResult, path: Path) -> None:
    """Test accuracy against recurrences at inference, beside the parent (and the control) as lines."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    rs = list(result.by_recurrence)
    accs = [result.by_recurrence[r] for r in rs]
    ys = [a.value for a in accs]
    err = [[y - a.ci[0] for y, a in zip(ys, accs)], [a.ci[1] - y for y, a in zip(ys, accs)]]
    ax.errorbar(rs, ys, yerr=err, fmt="o-", capsize=3, color="C0", label="recurrent (95% CI)")
    lines = [(result.parent_accuracy, "parent (no recurrence)", "C3", "-")]
    if result.control_accuracy is not None:
        lines.append((result.control_accuracy, f"parent + {result.settings.steps} steps, no recurrence", "C2", "--"))
    for acc, label, color, style in lines:
        ax.axhline(acc.value, color=color, linestyle=style, label=label)
        ax.axhspan(*acc.ci, color=color, alpha=0.12, linewidth=0)
    ax.axvline(result.final_mean, color="grey", linestyle=":", label=f"train mean at the end ({result.final_mean:g})")
    ax.set_xticks(rs)
    ax.set_xlabel("recurrences at inference")
    ax.set_ylabel("test accuracy")
    p, r, c = result.split
    ax.set_title(f"{Path(result.parent).name}: split ({p},{r},{c}), {result.curriculum_text}, "
                 f"{result.settings.steps} steps", fontsize=9)
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
