"""Per-tensor parameter resolution: scalars, conditional ``filter:`` lists and gradients.

Mirrors mergekit (``mergekit/config.py: evaluate_setting``, ``mergekit/parameter_resolver.py``,
``mergekit/plan.py``):

- A setting is a scalar, a *gradient* (a list of numbers, interpolated linearly over the
  layer index; booleans/strings pick ``values[int(t * (n - 1))]``), one conditional
  ``{filter: str, value: ...}`` or a list of them. In a conditional list the first entry
  whose ``filter`` is a substring of the tensor name wins; an entry without ``filter`` (or
  ``filter: "*"``) always matches. A ``value`` may itself be a gradient.
- ``t`` for a tensor of ``model.layers.{i}.`` is ``i / (num_layers - 1)`` (1 when there is one
  layer); tensors outside the layers (embeddings, final norm, lm_head) get ``t = 0``.
- Precedence: a model's own ``parameters`` first, then the top-level ``parameters``, then the
  method's default; a setting that resolves to nothing (no filter matched) falls through.
  Global (shared) parameters such as ``normalize`` or ``lambda`` come from the top level only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from soup_search.errors import MergeError

MISSING = object()
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter a merge method reads: ``scope`` is "global" (top level only) or "model"."""

    name: str
    kind: type  # float, bool or str (a name, such as fda's init)
    scope: str = "model"
    default: Any = MISSING
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is MISSING


def layer_t(name: str, num_layers: int | None) -> float:
    """mergekit's gradient position of tensor ``name``: layer / (num_layers - 1), 0 outside layers."""
    match = _LAYER.search(name)
    if match is None:
        return 0.0
    if num_layers is None:
        raise MergeError(
            f"tensor {name!r}: the recipe has gradient parameters but the layer count is unknown; "
            "pass num_layers (config num_hidden_layers)")
    return 1.0 if num_layers <= 1 else int(match.group(1)) / (num_layers - 1)


def _scalar(value: Any, kind: type) -> Any:
    if kind is bool:
        return bool(value)
    if kind is str:
        return str(value)
    return float(value)


def evaluate(setting: Any, name: str, t: float, kind: type) -> Any:
    """Resolve one setting for tensor ``name`` at gradient position ``t``; None if no filter matched."""
    if isinstance(setting, Mapping):
        setting = [setting]
    if not isinstance(setting, list):
        return _scalar(setting, kind)
    if not setting:
        return None
    if not isinstance(setting[0], Mapping):  # a gradient
        if kind in (bool, str) or len(setting) == 1:
            return _scalar(setting[int(t * (len(setting) - 1))], kind)
        scaled = t * (len(setting) - 1)
        i0 = int(scaled)
        i1 = min(len(setting) - 1, i0 + 1)
        frac = scaled - i0
        return (1 - frac) * float(setting[i0]) + frac * float(setting[i1])
    for cond in setting:
        flt = cond.get("filter")
        if flt is None or flt == "*" or (name and flt in name):
            return evaluate(cond["value"], name, t, kind)
    return None


def has_gradient(setting: Any) -> bool:
    """True when a setting (or any conditional value in it) is a gradient list."""
    if isinstance(setting, Mapping):
        return has_gradient(setting.get("value"))
    if isinstance(setting, list):
        return any(has_gradient(s) for s in setting) if setting and isinstance(setting[0], Mapping) else True
    return False


def setting_problems(where: str, setting: Any, kind: type) -> list[str]:
    """Type problems of one setting (scalar, gradient, conditional or list of conditionals)."""

    def scalar_ok(v: Any) -> bool:
        if kind in (bool, str):
            return isinstance(v, kind)
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    want = {bool: "true/false", str: "a name"}.get(kind, "a number")
    if isinstance(setting, Mapping):
        setting = [setting]
    if not isinstance(setting, list):
        return [] if scalar_ok(setting) else [f"{where}: expected {want}, a gradient list or filter/value list, got {setting!r}"]
    if not setting:
        return [f"{where}: empty list"]
    if all(not isinstance(s, Mapping) for s in setting):
        bad = [s for s in setting if not scalar_ok(s)]
        return [f"{where}: gradient entries must be {want}, got {bad[0]!r}"] if bad else []
    problems = []
    for i, cond in enumerate(setting):
        if not isinstance(cond, Mapping):
            problems.append(f"{where}[{i}]: expected a {{filter, value}} mapping, got {cond!r}")
            continue
        extra = set(cond) - {"filter", "value"}
        if extra:
            problems.append(f"{where}[{i}]: unknown key(s) {sorted(extra)} (only filter and value)")
        if "value" not in cond:
            problems.append(f"{where}[{i}]: missing 'value'")
        elif isinstance(cond["value"], Mapping) or (
                isinstance(cond["value"], list) and any(isinstance(v, Mapping) for v in cond["value"])):
            problems.append(f"{where}[{i}].value: must be a scalar or gradient list, not nested filters")
        else:
            problems += setting_problems(f"{where}[{i}].value", cond["value"], kind)
        if "filter" in cond and not isinstance(cond["filter"], str):
            problems.append(f"{where}[{i}].filter: must be a string, got {cond['filter']!r}")
    return problems


def resolve(spec: ParamSpec, sources: Sequence[Mapping[str, Any] | None], name: str, t: float,
            where: str) -> Any:
    """The value of ``spec`` for tensor ``name``: first source that resolves, else the default."""
    for source in sources:
        if source and spec.name in source:
            value = evaluate(source[spec.name], name, t, spec.kind)
            if value is not None:
                return value
    if spec.required:
        raise MergeError(
            f"missing parameter {spec.name!r} for {where} (tensor {name!r}); set it under the "
            "model's parameters or the top-level parameters")
    return spec.default


@dataclass(frozen=True)
class TensorParams:
    """Everything a method needs for one tensor name, resolved once and cached."""

    name: str
    keys: tuple[str, ...]  # the model keys whose tensors the method reads, in order
    shared: Mapping[str, Any]  # global parameters (normalize, lambda, ...)
    per_model: tuple[Mapping[str, Any], ...]  # model parameters, aligned with keys

    def column(self, param: str) -> list[float]:
        return [p[param] for p in self.per_model]
