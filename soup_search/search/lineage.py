"""A child search starts from what its parent run learned: carry-over and seeding. No Ray.

**Carry-over.** Every complete search trial of the parent whose soup uses only candidates this
run still has, with the same content fingerprint, and that was scored on this run's objective
revision, is re-encoded in this run's search space: :func:`encode` finds params whose soup is the
parent's soup (module → model → weight, to :data:`TOL`). Such a trial enters the child's study
as a complete trial with the parent's dev value and is never scored again; the others are
skipped, each reason counted in a note.

**Seeding.** The parent's best complete trials are mapped group by group onto this run's space
(:func:`seed_points`): a group both runs have keeps the parent's weight and expert, unless this
run's expert for it is a newcomer (a candidate the parent lacked, or whose checkpoint changed),
which then takes the expert's place; a group new in this run starts at weight 0.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from soup_search.search.baselines import soup_key
from soup_search.search.space import SearchSpace

#: two soups are the same when every (module, model) weight agrees to this
TOL = 1e-6
#: the user attributes (and trial log timings) of a carried trial
CARRIED_FROM = "carried_from"
PARENT_TRIAL = "parent_trial"

Soup = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class ParentTrial:
    """One search trial of the parent, as its results.json lists it."""

    number: int
    params: Mapping[str, Any]
    weights: Soup
    dev_mean: float
    dev_per_category: Mapping[str, float]
    pruned: bool = False


@dataclass(frozen=True)
class ParentRun:
    """What a child search reads of its parent run."""

    folder: str
    study: str
    space: SearchSpace
    #: the parent's candidates, and their content fingerprints (None: its results.json has none)
    candidates: tuple[str, ...]
    candidate_fps: Mapping[str, str] | None
    objective_revision: str | None
    trials: tuple[ParentTrial, ...]

    @classmethod
    def from_results(cls, folder: str, data: Mapping, study: str, space: SearchSpace) -> ParentRun:
        """The parent from its results.json (``space``: its search space, rebuilt by the caller)."""
        listed = data.get("candidates")
        trials = tuple(ParentTrial(number=int(t["number"]), params=dict(t["params"]), weights=t["weights"],
                                   dev_mean=float(t["dev_mean"]), dev_per_category=dict(t["dev_per_category"]),
                                   pruned=bool(t.get("pruned")))
                       for t in data["trials"] if t["stage"] == "search")
        return cls(folder=str(folder), study=study, space=space,
                   candidates=tuple(listed or data["analysis"]["candidates"]),
                   candidate_fps={n: c["fingerprint"] for n, c in listed.items()} if listed else None,
                   objective_revision=data.get("objective_revision"), trials=trials)


@dataclass(frozen=True)
class CarriedTrial:
    """A parent trial re-encoded in this run's space, with the parent's dev scores."""

    parent_trial: int
    params: Mapping[str, Any]
    soup: Soup
    dev_mean: float
    dev_per_category: Mapping[str, float]


@dataclass(frozen=True)
class CarryOver:
    """The parent trials this run takes as done, and how many it skipped, and why."""

    trials: tuple[CarriedTrial, ...] = ()
    skipped: int = 0
    notes: tuple[str, ...] = ()


# ---- soups <-> params ------------------------------------------------------------------
def _nonzero(per_model: Mapping[str, float]) -> dict[str, float]:
    return {m: float(w) for m, w in per_model.items() if abs(w) > TOL}


def _close(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return all(abs(a.get(m, 0.0) - b.get(m, 0.0)) <= TOL for m in set(a) | set(b))


def _module_soup(soup: Soup, module: str) -> dict[str, float] | None:
    """``soup``'s weights for one module of a space: its own, the soup's "all", or (for "all")
    attention's when attention and MLP agree; None when the soup has no such weights."""
    if module in soup:
        return _nonzero(soup[module])
    if "all" in soup:
        return _nonzero(soup["all"])
    if module == "all" and _close(soup["attn"], soup["mlp"]):
        return _nonzero(soup["attn"])
    return None


def _expert_params(space: SearchSpace, experts: Mapping[str, str]) -> dict[str, str]:
    return {space.expert_param(g): experts[g] for g in space.groups if len(space.alternates[g]) > 1}


def _params(space: SearchSpace, experts: Mapping[str, str], target: Mapping[str, Mapping[str, float]]) -> dict | None:
    """The params choosing ``experts`` whose soup is ``target`` (a model chosen by several groups
    splits its weight evenly), or None when a group would fall below the weight floor."""
    share = Counter(experts.values())
    params = _expert_params(space, experts)
    for module, per in target.items():
        weights = [per.get(experts[g], 0.0) / share[experts[g]] for g in space.groups]
        if any(w < space.min_weight - TOL for w in weights):
            return None
        numbers = space.params_for(weights, experts)
        params.update({name: numbers[name] for name in space.weight_params(module)})
    return params


def encode(space: SearchSpace, soup: Soup) -> dict | None:
    """Params of ``space`` whose :meth:`~SearchSpace.soup` is ``soup`` (module → model → weight,
    to :data:`TOL`), or None when the space cannot express it.

    Brute force over each group's expert choices: a model of the soup among the group's
    alternates, or (with ``min_weight`` 0) one the soup lacks, the group then weighing 0."""
    target = {}
    for module in space.modules:
        per = _module_soup(soup, module)
        if per is None:
            return None
        target[module] = per
    used = set().union(*target.values())
    if not used <= {m for g in space.groups for m in space.alternates[g]}:
        return None
    options = []
    for g in space.groups:
        alts = space.alternates[g]
        idle = [m for m in alts if m not in used][:1] if space.min_weight == 0 else []
        options.append([m for m in alts if m in used] + idle)
    for choice in itertools.product(*options):
        if not used <= set(choice):
            continue
        params = _params(space, dict(zip(space.groups, choice)), target)
        if params is not None and all(_close(_nonzero(w), target[m]) for m, w in space.soup(params).items()):
            return params
    return None


# ---- carry-over ------------------------------------------------------------------------
#: why a parent trial is not carried: (singular, plural) of the note's verb phrase
REASONS = {
    "pruned": ("was pruned (no full dev score)", "were pruned (no full dev score)"),
    "gone": ("uses a candidate that is gone", "use a candidate that is gone"),
    "changed": ("uses a candidate whose checkpoint changed", "use a candidate whose checkpoint changed"),
    "inexpressible": ("cannot be expressed in this run's search space",
                      "cannot be expressed in this run's search space"),
    "repeat": ("repeats a soup already carried", "repeat a soup already carried"),
}


def _note(reason: str, n: int) -> str:
    return f"{n} parent {'trial' if n == 1 else 'trials'} {REASONS[reason][n != 1]}"


def _why_not(trial: ParentTrial, parent_fps: Mapping[str, str], candidate_fps: Mapping[str, str]) -> str | None:
    if trial.pruned:
        return "pruned"
    models = {m for per in trial.weights.values() for m in _nonzero(per)}
    if any(m not in candidate_fps for m in models):
        return "gone"
    if any(parent_fps.get(m) != candidate_fps[m] for m in models):
        return "changed"
    return None


def carry_over(parent: ParentRun, space: SearchSpace, candidate_fps: Mapping[str, str],
               objective_revision: str) -> CarryOver:
    """The parent's search trials this run takes as done (each distinct soup once), in the
    parent's order; the rest counted as skipped, with a note per reason."""
    n = len(parent.trials)
    if parent.candidate_fps is None:
        return CarryOver(skipped=n, notes=(f"the parent's results.json has no candidate fingerprints: none of its "
                                           f"{n} search trials carried",))
    if parent.objective_revision != objective_revision:
        return CarryOver(skipped=n, notes=(f"the parent scored objective revision {parent.objective_revision}, this "
                                           f"run {objective_revision}: none of its {n} search trials carried",))
    reasons: Counter[str] = Counter()
    carried, seen = [], set()
    for t in parent.trials:
        reason = _why_not(t, parent.candidate_fps, candidate_fps)
        params = encode(space, t.weights) if reason is None else None
        if reason is None and params is None:
            reason = "inexpressible"
        if reason is None:
            key = soup_key(space, params)
            reason = "repeat" if key in seen else None
            seen.add(key)
        if reason is not None:
            reasons[reason] += 1
            continue
        carried.append(CarriedTrial(parent_trial=t.number, params=params, soup=space.soup(params),
                                    dev_mean=t.dev_mean, dev_per_category=dict(t.dev_per_category)))
    return CarryOver(trials=tuple(carried), skipped=sum(reasons.values()),
                     notes=tuple(_note(r, reasons[r]) for r in REASONS if reasons[r]))


# ---- seeding ---------------------------------------------------------------------------
def newcomers(parent: ParentRun, candidate_fps: Mapping[str, str]) -> list[str]:
    """This run's candidates that the parent lacked, or whose checkpoint changed since."""
    return [n for n, fp in candidate_fps.items() if n not in parent.candidates
            or (parent.candidate_fps is not None and parent.candidate_fps.get(n) != fp)]


def _parent_weights(weights: Mapping[str, Mapping[str, float]], module: str) -> Mapping[str, float]:
    """The parent's group weights for one module of this run's space."""
    if module in weights:
        return weights[module]
    if "all" in weights:
        return weights["all"]
    return {g: (weights["attn"][g] + weights["mlp"][g]) / 2 for g in weights["attn"]}


def seed_point(parent_space: SearchSpace, space: SearchSpace, params: Mapping, new: set[str]) -> dict | None:
    """A parent trial's params mapped onto ``space`` group by group, each newcomer in for the
    expert it now beats; None when no group of ``space`` was the parent's."""
    parent_experts, parent_weights = parent_space.experts_of(params), parent_space.group_weights(params)
    experts = {}
    for g in space.groups:
        alts = space.alternates[g]
        experts[g] = alts[0] if alts[0] in new or parent_experts.get(g) not in alts else parent_experts[g]
    out = _expert_params(space, experts)
    for module in space.modules:
        per = _parent_weights(parent_weights, module)
        weights = [per.get(g, 0.0) for g in space.groups]
        if sum(weights) <= 0:
            return None
        numbers = space.params_for([w / sum(weights) for w in weights], experts)
        out.update({name: numbers[name] for name in space.weight_params(module)})
    return out


def seed_points(parent: ParentRun, space: SearchSpace, candidate_fps: Mapping[str, str], top_k: int,
                known: Sequence[Mapping] = ()) -> list[dict]:
    """The parent's ``top_k`` best complete trials as points of ``space`` (:func:`seed_point`),
    without repeats and without the soups of ``known`` params (the carried trials)."""
    new = set(newcomers(parent, candidate_fps))
    best = sorted((t for t in parent.trials if not t.pruned), key=lambda t: (-t.dev_mean, t.number))[:top_k]
    seen = {soup_key(space, p) for p in known}
    points = []
    for t in best:
        point = seed_point(parent.space, space, t.params, new)
        if point is not None and soup_key(space, point) not in seen:
            seen.add(soup_key(space, point))
            points.append(point)
    return points
