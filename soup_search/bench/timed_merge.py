"""One merge in this process, timed and measured: ``python -m soup_search.bench.timed_merge RECIPE OUT``.

Prints one JSON line: ``seconds`` (wall time around :func:`merge_to_disk`: reading, merging and
writing), ``cpu_seconds`` (this process's CPU time over the same span: the figure that other load
on the machine does not inflate), ``rss_mib`` (the resident set just before the merge, once everything the merge uses is
imported: transformers too for a whole-model method) and ``peak_mib`` (the peak resident set during
the merge: what ``soup-search merge`` of that recipe needs). On Linux the peak is ``VmHWM`` after resetting it (``/proc/self/clear_refs``) right
before the merge, so imports never count; elsewhere it is ``ru_maxrss``, which may include them.
Kept apart from :mod:`soup_search.bench.methods` so that the process imports only what a merge needs.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import torch

from soup_search.merge import MergeRecipe
from soup_search.merge.stream import merge_to_disk, resolve_model_paths

MIB = 2**20
_STATUS = Path("/proc/self/status")


def _status_mib(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024 / MIB  # kB
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM := VmRSS
        return True
    except OSError:
        return False


def timed_merge(recipe_file: Path, out_dir: Path) -> dict:
    torch.set_num_threads(1)
    recipe = MergeRecipe.from_yaml(recipe_file)
    if recipe.method.whole_model:
        import transformers  # noqa: F401  (the method loads models with it: imported before the clock starts)

    paths = resolve_model_paths(recipe, recipe_file.parent)
    reset = _reset_peak()
    rss = _status_mib("VmRSS") or 0.0
    start, cpu = time.perf_counter(), time.process_time()
    merge_to_disk(recipe, out_dir, paths, progress=False)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    peak = _status_mib("VmHWM") if reset else None
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB  # KiB on Linux
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "rss_mib": rss, "peak_mib": peak, "peak_source": "VmHWM" if reset else "ru_maxrss"}


if __name__ == "__main__":
    print(json.dumps(timed_merge(Path(sys.argv[1]), Path(sys.argv[2]))))
