"""A merge recipe in mergekit's YAML format (the ``models:`` subset), as a frozen pydantic model.

Read with :meth:`MergeRecipe.from_yaml`, which reports every problem of the file at once
(ConfigError): unknown keys, an unknown method, parameters the method does not take,
wrong types, a missing base model or weight. Written back with :meth:`MergeRecipe.to_yaml`
in a form mergekit's ``mergekit-yaml`` accepts. :meth:`MergeRecipe.fingerprint` is a stable
hash used so that the search never merges or scores the same recipe twice.

Supported keys: ``models`` (each ``model`` + ``parameters``), ``merge_method``, ``base_model``,
``parameters``, ``dtype``, ``out_dtype``, ``tokenizer_source``. mergekit's ``dtype`` is the dtype
it computes in; here arithmetic is always float32 and ``out_dtype`` (else ``dtype``, else the
input dtype) is the dtype written. ``slices``, ``modules``, ``tokenizer`` and ``chat_template``
are refused with a message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationInfo, model_validator

from soup_search.errors import ConfigError
from soup_search.merge.method import MergeMethod
from soup_search.merge.params import has_gradient, setting_problems
from soup_search.merge.plan import MergePlan
from soup_search.merge.registry import METHODS

DTYPES = ("float32", "float16", "bfloat16")
KEYS = ("models", "merge_method", "base_model", "parameters", "dtype", "out_dtype", "tokenizer_source")
UNSUPPORTED = {
    "slices": "layer slices are not supported; merge whole models with models:",
    "modules": "per-module configs are not supported; use models: with filter/value parameters",
    "tokenizer": "tokenizer: is not supported; use tokenizer_source: with a model path",
    "chat_template": "chat_template: is not supported; the chat template is copied from tokenizer_source",
}
NOTES = {"int8_mask": "int8_mask is a mergekit memory option with no effect on the result; ignored"}


class ModelEntry(BaseModel):
    """One input model: its path (relative to the YAML's folder, or absolute) and its parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    model: str
    parameters: dict[str, Any] = {}


class MergeRecipe(BaseModel):
    """A validated merge recipe; see the module docstring for the format."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    models: list[ModelEntry]
    merge_method: str
    base_model: str | None = None
    parameters: dict[str, Any] = {}
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    _plans: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any, info: ValidationInfo) -> Any:
        source = (info.context or {}).get("source", "merge recipe")
        data, problems = check_recipe(data)
        if problems:
            raise ConfigError(source, problems)
        return data

    # -- reading and writing ------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> MergeRecipe:
        """Read a mergekit YAML file (or YAML text); all problems are reported together."""
        text, source = _read(path_or_text)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(source, [f"invalid YAML: {' '.join(str(err).split())}"]) from None
        return cls.model_validate(data, context={"source": source})

    def to_dict(self) -> dict:
        """The recipe as mergekit's YAML dict (empty and unset fields left out)."""
        data: dict[str, Any] = {"models": [
            {"model": m.model, **({"parameters": dict(m.parameters)} if m.parameters else {})}
            for m in self.models]}
        data["merge_method"] = self.merge_method
        for key in ("base_model", "parameters", "dtype", "out_dtype", "tokenizer_source"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data

    def to_yaml(self) -> str:
        """mergekit-compatible YAML; methods mergekit lacks are written as their exact equivalent."""
        data, comment = self.method.to_mergekit(self.to_dict())
        text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
        return (f"# {comment}\n" if comment else "") + text

    # -- identity ---------------------------------------------------------------------
    def canonical(self) -> dict:
        """A normalised dict: defaults filled in, numbers as floats rounded to 12 significant
        digits, base-model parameters dropped where the method ignores them, and models sorted
        by name unless their order matters."""
        method = self.method
        top = {}
        for spec in method.params:
            if spec.name in NOTES:
                continue
            if spec.name in self.parameters:
                top[spec.name] = self.parameters[spec.name]
            elif not spec.required:
                top[spec.name] = spec.default
        models = []
        for m in self.models:
            ignored = method.base == "required" and m.model == self.base_model
            params = {} if ignored else {k: v for k, v in m.parameters.items()
                                          if k not in top or _canon(top[k]) != _canon(v)}
            models.append({"model": m.model, "parameters": params})
        if not method.ordered:
            models.sort(key=lambda m: m["model"])
        return _canon({
            "merge_method": self.merge_method, "base_model": self.base_model, "models": models,
            "parameters": top, "out_dtype": self.out_dtype or self.dtype,
            "tokenizer_source": self.tokenizer_source,
        })

    def fingerprint(self) -> str:
        """Stable 16-hex-digit hash of :meth:`canonical` (independent of key order and float spelling)."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MergeRecipe) and self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    # -- use --------------------------------------------------------------------------
    @property
    def method(self) -> MergeMethod:
        return METHODS[self.merge_method]

    @property
    def model_keys(self) -> list[str]:
        """Every model the recipe reads: ``models`` in order, then ``base_model`` if not among them."""
        keys = [m.model for m in self.models]
        if self.base_model and self.base_model not in keys:
            keys.append(self.base_model)
        return keys

    def notes(self) -> list[str]:
        """Remarks for the user about settings that are accepted but have no effect."""
        return [note for key, note in NOTES.items() if key in self.parameters]

    def has_gradients(self) -> bool:
        """Whether any parameter is a gradient list (then merges need the layer count)."""
        found = self._plans.get("gradients")
        if found is None:
            settings = list(self.parameters.values()) + [v for m in self.models for v in m.parameters.values()]
            found = self._plans["gradients"] = any(has_gradient(s) for s in settings)
        return found

    def plan(self, num_layers: int | None = None) -> MergePlan:
        """The cached plan (``num_layers`` only matters for gradient parameters)."""
        key = num_layers if self.has_gradients() else None
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = MergePlan(self, num_layers)
        return plan

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> MergeRecipe:
        """A validated copy with ``update`` applied (and a fresh plan cache)."""
        return type(self).model_validate({**self.model_dump(), **(update or {})})

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {**state, "__pydantic_private__": {"_plans": {}}}  # plans are rebuilt on the other side

    @classmethod
    def soup(cls, weights: Mapping[str, float], method: str = "linear", base_model: str | None = None,
             **params: Any) -> MergeRecipe:
        """A recipe giving each model its weight (``lambda_=`` is accepted for ``lambda``)."""
        if "lambda_" in params:
            params["lambda"] = params.pop("lambda_")
        return cls.model_validate({
            "models": [{"model": str(k), "parameters": {"weight": float(w)}} for k, w in weights.items()],
            "merge_method": method, "base_model": base_model, "parameters": params,
        })


def check_recipe(data: Any) -> tuple[Any, list[str]]:
    """Validate raw recipe data; returns (normalised data, every problem found)."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    if not isinstance(data, Mapping):
        return data, [f"expected a mapping with models: and merge_method:, got {type(data).__name__}"]
    data, problems = dict(data), []
    for key in data:
        if key in UNSUPPORTED:
            problems.append(f"{key}: {UNSUPPORTED[key]}")
        elif key not in KEYS:
            problems.append(f"unknown key {key!r} (allowed: {', '.join(KEYS)})")

    name = data.get("merge_method")
    method = METHODS.get(name) if isinstance(name, str) else None
    if name is None:
        problems.append("merge_method: missing")
    elif method is None:
        problems.append(f"merge_method: unknown method {name!r} (known: {', '.join(sorted(METHODS))})")

    base = data.get("base_model")
    if base is not None and not isinstance(base, str):
        problems.append(f"base_model: expected a path string, got {base!r}")
        base = None

    models = data.get("models")
    entries = []
    if not isinstance(models, list) or not models:
        problems.append("models: expected a non-empty list of {model: PATH, parameters: {...}}")
        models = []
    for i, entry in enumerate(models):
        if isinstance(entry, BaseModel):
            entry = entry.model_dump()
        if not isinstance(entry, Mapping) or not isinstance(entry.get("model"), str):
            problems.append(f"models[{i}]: expected a mapping with a 'model' path string, got {entry!r}")
            continue
        extra = set(entry) - {"model", "parameters"}
        if extra:
            problems.append(f"models[{i}]: unknown key(s) {sorted(extra)} (only model and parameters)")
        params = entry.get("parameters") or {}
        if not isinstance(params, Mapping):
            problems.append(f"models[{i}].parameters: expected a mapping, got {params!r}")
            params = {}
        entries.append({"model": entry["model"], "parameters": dict(params)})
    keys = [e["model"] for e in entries]
    for dup in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"models: {dup!r} is listed more than once")
    data["models"] = entries

    top = data.get("parameters") or {}
    if not isinstance(top, Mapping):
        problems.append(f"parameters: expected a mapping, got {top!r}")
        top = {}
    top = dict(top)

    for key in ("dtype", "out_dtype"):
        value = data.get(key)
        if value is None:
            continue
        short = value.removeprefix("torch.") if isinstance(value, str) else value
        if short not in DTYPES:
            problems.append(f"{key}: {value!r} is not one of {', '.join(DTYPES)}")
        else:
            data[key] = short

    tok = data.get("tokenizer_source")
    if tok is not None and (not isinstance(tok, str) or tok == "union"):
        problems.append(f"tokenizer_source: {tok!r} is not supported; give a model path or 'base'")
    elif tok == "base" and base is None:
        problems.append("tokenizer_source: 'base' needs base_model")

    if method is not None:
        top, more = method.canonical_parameters(top)
        problems += more
        problems += _method_problems(method, base, entries, top)
    data["parameters"] = top
    return data, problems


def _method_problems(method, base: str | None, entries: list[dict], top: dict) -> list[str]:
    specs = {s.name: s for s in method.params}
    problems = []
    if method.base == "required" and base is None:
        problems.append(f"base_model: merge_method {method.name} needs a base_model (task vectors are taken against it)")
    if method.base == "forbidden" and base is not None:
        problems.append(f"base_model: merge_method {method.name} takes no base_model")
    if method.num_models is not None and len(entries) != method.num_models:
        problems.append(f"models: merge_method {method.name} takes exactly {method.num_models} models, got {len(entries)}")
    for key, value in top.items():
        if key not in specs:
            problems.append(f"parameters.{key}: unknown parameter for {method.name} (known: {', '.join(specs)})")
        else:
            problems += setting_problems(f"parameters.{key}", value, specs[key].kind)
    inputs = [e for e in entries if not (method.base == "required" and e["model"] == base)]
    for i, entry in enumerate(entries):
        for key, value in entry["parameters"].items():
            spec = specs.get(key)
            if spec is None:
                known = [s.name for s in method.params if s.scope == "model"]
                problems.append(f"models[{i}].parameters.{key}: unknown parameter for {method.name} (known: {', '.join(known) or 'none'})")
            elif spec.scope == "global":
                problems.append(f"models[{i}].parameters.{key}: {key} is a global parameter; move it to the top-level parameters")
            else:
                problems += setting_problems(f"models[{i}].parameters.{key}", value, spec.kind)
    if method.base == "input" and base is not None and base not in [e["model"] for e in entries]:
        inputs = inputs + [{"model": base, "parameters": {}}]
    for spec in method.params:
        if not spec.required:
            continue
        if spec.scope == "global":
            if spec.name not in top:
                problems.append(f"parameters.{spec.name}: required by {method.name}")
            continue
        for entry in inputs:
            if spec.name not in entry["parameters"] and spec.name not in top:
                what = ("base_model (mergekit adds it to the inputs)" if entry["model"] == base
                        and entry not in entries else f"model {entry['model']!r}")
                problems.append(f"{what} has no {spec.name}; set it in its parameters or in the top-level parameters")
    return problems


def _canon(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(f"{float(value):.12g}")
    if isinstance(value, Mapping):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    return value


def _read(path_or_text: str | Path) -> tuple[str, str]:
    if isinstance(path_or_text, Path) or ("\n" not in path_or_text and Path(path_or_text).suffix in (".yaml", ".yml")):
        path = Path(path_or_text)
        try:
            return path.read_text(), str(path)
        except OSError as err:
            raise ConfigError(str(path), [f"cannot read ({err.strerror or err})"]) from None
    return path_or_text, "merge recipe"


class _Dumper(yaml.SafeDumper):
    """Lists of numbers in flow style (``[0.1, 0.5, 1.0]``), like mergekit's ConfigYamlDumper."""

    def represent_list(self, data):
        flow = all(isinstance(e, (int, float)) for e in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _Dumper.represent_list)
