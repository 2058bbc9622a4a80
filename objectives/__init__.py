"""Benchmark objectives: categories, deterministic splits and answer matching, found by name.

Installed as ``soup_search.objectives`` (the folder stays at the top of the repository).

>>> from soup_search.objectives import get_objective
>>> toy = get_objective("toy", seed=0)
>>> toy.categories[:2]
('add', 'sub')

Your own objective: subclass :class:`Objective` and either call
``register_objective("mine", MyObjective)`` (or ``"my_pkg.module:MyObjective"``) before the
config is loaded, or declare a Python entry point in the group ``soup_search.objectives``::

    [project.entry-points."soup_search.objectives"]
    mine = "my_pkg.module:MyObjective"
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import asdict
from importlib.metadata import entry_points
from typing import Any

from soup_search.errors import ObjectiveError
from soup_search.objectives.base import SPLITS, Example, Objective, weighted_mean
from soup_search.objectives.matching import MATCHERS, exact_match, extract_number, numeric_match
from soup_search.objectives.prompting import PROMPTING_PARAMS, Prompting

#: the entry-point group where other packages register objectives
ENTRY_POINT_GROUP = "soup_search.objectives"
#: name -> class, or "module:Class" imported on first use (so one objective's dependencies never load another's)
REGISTRY: dict[str, type | str] = {
    "toy": "soup_search.objectives.toy:ToyObjective",
    "jsonl": "soup_search.objectives.jsonl:JsonlObjective",
    "lm_eval": "soup_search.objectives.lm_eval:LmEvalObjective",
}
#: names that look like objectives but are not, with where to go instead
NOT_OBJECTIVES = {
    "leaderboard": "a leaderboard gives category scores, not examples to score soups on; put its CSV in the "
                   "'scores:' section (scores: {csv: PATH}) and keep an example objective such as toy or jsonl",
}


def register_objective(name: str, target: type | str) -> None:
    """Make an objective available by ``name``: a class, or ``"module:Class"`` imported when used."""
    if name in NOT_OBJECTIVES:
        raise ObjectiveError(f"the objective name {name!r} is reserved; pick another name")
    if name in REGISTRY and REGISTRY[name] != target:
        raise ObjectiveError(f"objective {name!r} is already registered as {REGISTRY[name]!r}; pick another name")
    REGISTRY[name] = target


def objective_names() -> list[str]:
    """Every known objective name: built in, registered, and from installed entry points."""
    return sorted(set(REGISTRY) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def objective_class(name: str) -> type:
    """The class registered as ``name`` (by the registry, a call, or an entry point)."""
    if name in NOT_OBJECTIVES:
        raise ObjectiveError(f"'{name}' is not an objective: {NOT_OBJECTIVES[name]}")
    target = REGISTRY.get(name)
    if target is None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise ObjectiveError(f"unknown objective {name!r}; use one of: {', '.join(objective_names())}")
        target = REGISTRY[name] = found[0].value
    return _imported(name, target) if isinstance(target, str) else target


def objective_target(name: str) -> str:
    """``"module:Class"`` of the objective registered as ``name``: how another process (a Ray
    actor, which never saw a ``register_objective`` call) imports it."""
    cls = objective_class(name)
    return f"{cls.__module__}:{cls.__qualname__}"


def _imported(name: str, target: str) -> type:
    module, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ObjectiveError(f"objective {name!r} points to {target!r}, which cannot be imported ({exc}); "
                             "fix the registration or install its package (on every node)") from None
    if not (isinstance(obj, type) and issubclass(obj, Objective)):
        raise ObjectiveError(f"objective {name!r} points to {target!r}, which is not an Objective subclass; "
                             "register a subclass of soup_search.objectives.Objective")
    return obj


def parameter_problems(cls: type, params: Mapping[str, Any]) -> list[str]:
    """Unknown and missing parameters of an objective class, each naming the valid ones (every
    objective takes the prompting parameters, :data:`PROMPTING_PARAMS`)."""
    label = getattr(cls, "name", "") or cls.__name__
    own = {k: v for k, v in params.items() if k not in PROMPTING_PARAMS}
    problems = []
    try:
        Prompting.of(label, **{**asdict(cls.prompting), **_prompting_params(params)})
    except ObjectiveError as exc:
        problems.append(str(exc))
    sig = inspect.signature(cls.__init__)
    if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return problems
    accepted = [p for p in list(sig.parameters.values())[1:] if p.kind != p.VAR_POSITIONAL]
    names = [p.name for p in accepted]
    problems += [f"unknown parameter {k!r} of objective {label!r}; valid parameters: "
                 f"{', '.join([*names, *PROMPTING_PARAMS])}" for k in own if k not in names]
    problems += [f"objective {label!r} needs the parameter {p.name!r}"
                 for p in accepted if p.default is p.empty and p.name not in own]
    return problems


def _prompting_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in PROMPTING_PARAMS if k in params}


def build_objective(name: str, params: Mapping[str, Any], target: str | None = None) -> Objective:
    """Build objective ``name`` with ``params``; ``target`` ("module:Class") skips the registry.

    The prompting parameters go to the objective's :class:`Prompting`, over the defaults the
    objective set (its class's, or what its data says, e.g. an lm-eval task's delimiters)."""
    cls = _imported(name, target) if target else objective_class(name)
    problems = parameter_problems(cls, params)
    if problems:
        raise ObjectiveError("; ".join(problems))
    objective = cls(**{k: v for k, v in params.items() if k not in PROMPTING_PARAMS})
    given = _prompting_params(params)
    if given:
        objective.prompting = Prompting.of(objective.name, **{**asdict(objective.prompting), **given})
    return objective


def get_objective(name: str, /, **params: Any) -> Objective:
    """Build the objective registered as ``name`` with its parameters."""
    return build_objective(name, params)


__all__ = [
    "ENTRY_POINT_GROUP",
    "MATCHERS",
    "REGISTRY",
    "SPLITS",
    "Example",
    "Objective",
    "PROMPTING_PARAMS",
    "Prompting",
    "build_objective",
    "exact_match",
    "extract_number",
    "get_objective",
    "numeric_match",
    "objective_class",
    "objective_names",
    "objective_target",
    "parameter_problems",
    "register_objective",
    "weighted_mean",
]
