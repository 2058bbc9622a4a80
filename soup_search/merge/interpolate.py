"""``interpolate``: ``lambda * theta_a + (1 - lambda) * theta_b`` for exactly two models.

``a`` is the FIRST entry of ``models``, ``b`` the second. ``lambda`` (global, required) may
be a number, a gradient over the layers, a mergekit ``filter``/``value`` list, or a mapping
by module group::

    parameters:
      lambda: {attention: 0.3, mlp: 0.7, embeddings: 0.0, norms: 0.5, lm_head: 1.0, default: 0.5}

Groups match tensor names by substring, first match wins, in this order: ``attention``
(``self_attn``), ``mlp`` (``mlp``), ``embeddings`` (``embed_tokens``), ``norms`` (``norm``: the
layer norms and the final norm), ``lm_head`` (``lm_head``); ``default`` matches the rest and is
required. The mapping is stored as the equivalent filter list.

mergekit has no method of this name (its ``slerp`` with ``t`` is the closest, but spherical).
The exact mergekit equivalent is ``linear`` with ``normalize: false`` and weights ``lambda``
for ``a`` and ``1 - lambda`` for ``b``, carrying the same filters/gradients;
``MergeRecipe.to_yaml()`` writes that form so the recipe runs in mergekit as is. No base model.
"""

from __future__ import annotations

from dataclasses import dataclass

from soup_search.merge.method import MergeMethod, weighted_sum
from soup_search.merge.params import ParamSpec, TensorParams

GROUPS = {
    "attention": "self_attn",
    "mlp": "mlp",
    "embeddings": "embed_tokens",
    "norms": "norm",
    "lm_head": "lm_head",
}


def _one_minus(setting):
    if isinstance(setting, dict):
        return {**setting, "value": _one_minus(setting["value"])}
    if isinstance(setting, list):
        return [_one_minus(s) for s in setting]
    return float(f"{1.0 - setting:.12g}")


@dataclass(frozen=True)
class InterpolateMerge(MergeMethod):
    name: str = "interpolate"
    params: tuple = (ParamSpec("lambda", float, "global", help="share of the first model"),)
    base: str = "forbidden"
    num_models: int = 2
    ordered: bool = True

    def canonical_parameters(self, parameters: dict) -> tuple[dict, list[str]]:
        lam = parameters.get("lambda")
        if not isinstance(lam, dict) or "value" in lam or "filter" in lam:
            return parameters, []
        unknown = sorted(set(lam) - set(GROUPS) - {"default"})
        problems = [f"parameters.lambda: unknown group(s) {unknown} (groups: {', '.join(GROUPS)}, default)"] if unknown else []
        if "default" not in lam:
            problems.append("parameters.lambda: a group mapping needs a 'default' value")
        conds = [{"filter": GROUPS[g], "value": lam[g]} for g in GROUPS if g in lam]
        if "default" in lam:
            conds.append({"value": lam["default"]})
        return {**parameters, "lambda": conds}, problems

    def to_mergekit(self, data: dict) -> tuple[dict, str]:
        lam = data.get("parameters", {})["lambda"]
        (a, b) = data["models"]
        out = {
            "models": [{"model": a["model"], "parameters": {"weight": lam}},
                       {"model": b["model"], "parameters": {"weight": _one_minus(lam)}}],
            "merge_method": "linear",
            "parameters": {"normalize": False},
        }
        out.update({k: v for k, v in data.items() if k not in ("models", "merge_method", "parameters")})
        return out, "soup-search interpolate recipe written as its exact mergekit equivalent (linear, normalize false)"

    def prepare(self, params: TensorParams) -> tuple[float, float]:
        lam = params.shared["lambda"]
        return (lam, 1.0 - lam)

    def merge(self, prepared, tensors, base):
        return weighted_sum(tensors, prepared)

    def linear_form(self, prepared):
        return prepared, 0.0


interpolate = InterpolateMerge()
