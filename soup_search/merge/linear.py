"""``linear``: the weighted average ``sum(w_i * theta_i) / sum(w_i)`` (a model soup).

Mirrors ``mergekit/merge_methods/linear.py`` (mergekit 0.1.5):

- ``weight`` (per model) is required; there is no default weight. A top-level
  ``parameters.weight`` is the fallback for models that do not set one.
- ``normalize`` (global) defaults to true: divide by the summed weights.
- ``base_model`` is not special: mergekit adds it to the inputs when it is not listed in
  ``models`` (``plan.py: normalize_config``), so it then needs a weight from the top-level
  parameters; when listed it is an ordinary input.
- Accumulates in float32 (``torch.float64`` inputs in mergekit stay float64; here float32).

Deviation: a weight sum of zero with ``normalize: true`` gives Inf/NaN in mergekit; here it
is refused with a MergeError. Negative weights are refused by ``soup-search merge`` unless
``--allow-negative`` (a CLI check, not a method rule). We multiply by ``w_i / sum(w)`` rather
than dividing at the end, which differs from mergekit by float32 rounding only.
"""

from __future__ import annotations

from dataclasses import dataclass

from soup_search.errors import MergeError
from soup_search.merge.method import ZERO_SUM, MergeMethod, weighted_sum
from soup_search.merge.params import ParamSpec, TensorParams


@dataclass(frozen=True)
class LinearMerge(MergeMethod):
    name: str = "linear"
    params: tuple = (
        ParamSpec("weight", float, "model", help="mixing weight of this model"),
        ParamSpec("normalize", bool, "global", True, help="divide by the sum of the weights"),
    )
    base: str = "input"
    reference: str = "https://arxiv.org/abs/2203.05482"

    def prepare(self, params: TensorParams) -> tuple[float, ...]:
        weights = params.column("weight")
        if params.shared["normalize"]:
            total = sum(weights)
            if abs(total) < ZERO_SUM:
                raise MergeError(
                    f"linear: weights {weights} for tensor {params.name!r} sum to zero with "
                    "normalize: true; change the weights or set normalize: false")
            weights = [w / total for w in weights]
        return tuple(weights)

    def merge(self, prepared, tensors, base):
        return weighted_sum(tensors, prepared)

    def linear_form(self, prepared):
        return prepared, 0.0


linear = LinearMerge()
