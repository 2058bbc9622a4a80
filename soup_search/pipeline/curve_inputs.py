"""The models of a curve (sweep: A and B; transfer: target, plus and minus), checked before any Ray work.

Each is a checkpoint folder (or an fsspec URL) or the name of a model of the config's toy zoo
(``base``, ``expert_add_sub``, ...). Together they must form a candidate set (one architecture,
tensor layout and vocabulary: :func:`~soup_search.candidates.load_candidates`).

**Different bases.** ``theta_plus - theta_minus`` is a reasoning vector only when both are
fine-tunes of one base. That is judged from the weights, since a checkpoint rarely records its
base (a zoo manifest does, other folders do not): :func:`base_distance` is
``||A - B|| / sqrt(||A||^2 + ||B||^2)`` over a sample of the weight matrices. Models trained from
different initialisations have uncorrelated weights, so it is close to 1 (1.41 / sqrt(2) = 1.00
between two random tiny Llamas, 1.00 between one and a zoo model); fine-tunes of one base differ
by a small part of their weights (0.12 to 0.28 between the tiny zoo's models, which are
fine-tuned hard; far less for real fine-tunes). Above :data:`SAME_BASE_MAX` they count as
different bases. It is symmetric and, unlike ``||A - B|| / ||B||``, does not change with the
two models' norms.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import torch

from soup_search.candidates import CandidateSet, load_candidates
from soup_search.config import RunConfig, candidate_name, candidates_cache_dir
from soup_search.errors import CandidateError
from soup_search.io.checkpoint import CheckpointReader
from soup_search.io.remote import is_url
from soup_search.zoo import build_zoo, get_spec

#: above this base distance two models count as fine-tunes of different bases
SAME_BASE_MAX = 0.5
#: at most this many weight matrices, evenly spread over the model, enter the base distance
SAMPLE_MATRICES = 16


def zoo_names(cfg: RunConfig) -> list[str]:
    """The model names of the config's zoo (none when it names no zoo)."""
    if not cfg.candidates.zoo:
        return []
    spec = get_spec(cfg.candidates.zoo)[1]
    return ["base", *spec.candidate_names()]


def resolve_model(cfg: RunConfig, label: str, spec: str) -> str:
    """A checkpoint folder, a URL or a zoo model name as the location of a checkpoint (``label``:
    how the user gave it, for the error)."""
    if is_url(spec) or Path(spec).expanduser().is_dir():
        return spec.rstrip("/") if is_url(spec) else str(Path(spec).expanduser().resolve())
    names = zoo_names(cfg)
    if spec in names:
        return str(build_zoo(size=cfg.candidates.zoo, seed=cfg.candidates.zoo_seed).models()[spec])
    zoo = (f"a model of the {cfg.candidates.zoo} zoo ({', '.join(names)})" if names
           else "a zoo model (give --config with candidates.zoo to use zoo names)")
    raise CandidateError(f"{label} {spec!r} is neither a checkpoint folder nor {zoo}; "
                         "give a folder saved with save_pretrained or a zoo model name")


def curve_candidates(cfg: RunConfig, models: dict[str, str]) -> tuple[CandidateSet, dict[str, str]]:
    """The candidate set of ``models`` (role -> location) and each role's candidate name.

    A location given for two roles is one candidate; two locations with one folder name are
    told apart by their roles."""
    unique = list(dict.fromkeys(models.values()))
    folder = {loc: candidate_name(loc) for loc in unique}
    first_role: dict[str, str] = {}
    for role, loc in models.items():
        first_role.setdefault(loc, role)
    clashes = Counter(folder.values())
    names = {loc: f"{folder[loc]}_{first_role[loc]}" if clashes[folder[loc]] > 1 else folder[loc] for loc in unique}
    candidates = load_candidates(unique, names=[names[loc] for loc in unique], cache_dir=candidates_cache_dir(cfg))
    return candidates, {role: names[loc] for role, loc in models.items()}


def base_distance(a: str | Path, b: str | Path, cache_dir: str | Path | None = None) -> float:
    """``||A - B|| / sqrt(||A||^2 + ||B||^2)`` over up to :data:`SAMPLE_MATRICES` weight matrices
    (2-D tensors) evenly spread over the sorted tensor names, in float32, one tensor at a time."""
    with CheckpointReader(a, cache_dir) as ra, CheckpointReader(b, cache_dir) as rb:
        matrices = [n for n, info in ra.infos().items() if len(info.shape) == 2]
        if not matrices:
            return 0.0
        k = min(SAMPLE_MATRICES, len(matrices))
        picked = sorted({matrices[round(i * (len(matrices) - 1) / max(k - 1, 1))] for i in range(k)})
        diff = norms = 0.0
        for name in picked:
            ta, tb = ra.get(name).to(torch.float32), rb.get(name).to(torch.float32)
            diff += float(torch.sum((ta - tb) ** 2))
            norms += float(torch.sum(ta**2) + torch.sum(tb**2))
    return math.sqrt(diff / norms) if norms > 0 else 0.0


def check_same_base(candidates: CandidateSet, plus: str, minus: str) -> float:
    """Refuse a plus and a minus model that are one checkpoint or fine-tunes of different bases
    (one line); returns their base distance."""
    if plus == minus:
        raise CandidateError(f"--plus and --minus are the same checkpoint ({plus!r}): their difference is zero; "
                             "give two fine-tunes of one base")
    a, b = candidates.candidate(plus), candidates.candidate(minus)
    distance = base_distance(a.path, b.path, candidates.cache_dir)
    if distance > SAME_BASE_MAX:
        raise CandidateError(
            f"--plus {plus!r} and --minus {minus!r} look like fine-tunes of different bases (base distance "
            f"{distance:.2f} > {SAME_BASE_MAX}; about 1 for unrelated weights): their difference is not a "
            "reasoning vector; give two fine-tunes of one base")
    return distance
