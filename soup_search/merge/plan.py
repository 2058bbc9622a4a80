"""A recipe's plan: which inputs a method reads and, per tensor, their resolved parameters.

Parameters are resolved (filters, gradients, defaults; see :mod:`soup_search.merge.params`)
and prepared by the method (:meth:`MergeMethod.prepare`) once per tensor name, then cached,
so the hot path (:meth:`MergePlan.merge`, called per tensor per trial) does no string or
regex work. "Plan" is this per-recipe object; what a method prepares per tensor is its
"prepared" form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from soup_search.errors import MergeError
from soup_search.merge.params import TensorParams, layer_t, resolve

if TYPE_CHECKING:  # torch is imported where tensors are computed (a trial process never loads it)
    import torch


class MergePlan:
    """Resolved, prepared parameters of one recipe, per tensor name (built lazily).

    ``recipe`` is a :class:`~soup_search.merge.recipe.MergeRecipe`, which builds its plans
    (:meth:`MergeRecipe.plan`); this module does not import it, so there is no cycle.
    """

    def __init__(self, recipe, num_layers: int | None = None):
        self.recipe = recipe
        self.method = recipe.method
        self.num_layers = num_layers
        base = recipe.base_model
        models = {m.model: m.parameters for m in recipe.models}
        if self.method.base == "required":
            self.base_key = base
            self.keys = tuple(k for k in models if k != base)
        else:
            self.base_key = None
            self.keys = tuple(models) + ((base,) if base and self.method.base == "input" and base not in models else ())
        self._sources = [(models.get(k), recipe.parameters) for k in self.keys]
        self._shared = [s for s in self.method.params if s.scope == "global"]
        self._per_model = [s for s in self.method.params if s.scope == "model"]
        self._gradients = recipe.has_gradients()
        self._params: dict[str, TensorParams] = {}
        self._prepared: dict[str, Any] = {}

    def params(self, name: str) -> TensorParams:
        """The parameters of tensor ``name``, resolved as mergekit does (cached)."""
        params = self._params.get(name)
        if params is None:
            t = layer_t(name, self.num_layers) if self._gradients else 0.0
            shared = {s.name: resolve(s, [self.recipe.parameters], name, t, "the recipe") for s in self._shared}
            per_model = tuple(
                {s.name: resolve(s, sources, name, t, f"model {key!r}") for s in self._per_model}
                for key, sources in zip(self.keys, self._sources))
            params = self._params[name] = TensorParams(name, self.keys, shared, per_model)
        return params

    def prepared(self, name: str) -> Any:
        """The method's prepared form for tensor ``name`` (cached)."""
        prepared = self._prepared.get(name)
        if prepared is None:
            prepared = self._prepared[name] = self.method.prepare(self.params(name))
        return prepared

    def linear_form(self, name: str) -> tuple[tuple[float, ...], float] | None:
        """``(coeffs, base_coeff)`` if the merge of tensor ``name`` is a weighted sum of
        ``keys`` (and ``base_key``), else None: :meth:`MergeMethod.linear_form`."""
        return self.method.linear_form(self.prepared(name))

    def check(self, names: Iterable[str], allow_negative: bool = False) -> None:
        """Resolve and prepare every tensor up front, so bad weights fail before any output."""
        for name in names:
            self.prepared(name)
            if allow_negative or self.method.name != "linear":
                continue
            for key, p in zip(self.keys, self.params(name).per_model):
                if p["weight"] < 0:
                    raise MergeError(
                        f"linear: model {key!r} has negative weight {p['weight']} (tensor {name!r}); "
                        "pass --allow-negative if this is intended")

    def merge(self, name: str, tensors: Mapping[str, torch.Tensor], base: torch.Tensor | None = None) -> torch.Tensor:
        """Merge tensor ``name`` from ``tensors`` (model key -> tensor); returns float32."""
        prepared = self.prepared(name)
        try:
            inputs = [tensors[k] for k in self.keys]
        except KeyError as err:
            raise MergeError(f"tensor {name!r}: no tensor given for model {err.args[0]!r}; pass one per model in the recipe") from None
        if self.base_key is not None and base is None:
            base = tensors.get(self.base_key)
            if base is None:
                raise MergeError(f"tensor {name!r}: {self.method.name} needs the base model's tensor; pass base=")
        return self.method.merge(prepared, inputs, base)
