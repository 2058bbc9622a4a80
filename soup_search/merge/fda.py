"""``fda``: model merging with Functional Dual Anchors (Shi, Wen and Liu, arXiv 2510.21223).

FDA merges in input space. For each part of the model (each decoder layer, then the head: the
paper's layer-wise scheme, Sec. 2.4 and Algorithm 1; see :mod:`soup_search.merge.anchors`):

1. per expert ``i``: ``anchors`` synthetic inputs of ``tokens`` tokens each, in the part's input
   space (the residual stream, ``hidden`` wide), started from ``init`` and moved by AdamW
   (``anchor_steps`` at ``anchor_lr``) so that the descent direction of the representation
   distance at the base, ``-grad Dist(f(theta_0, x), f(theta_i, x))``, points along the part's
   task vector ``theta_i - theta_0`` (cosine gradient matching, Eq. 1-2);
2. the merged part, started from the base's (Eq. 5, the paper's "Pretrained" rows), is fitted
   by Adam (``fit_steps`` at ``fit_lr``, full batch) to match each expert's outputs on that
   expert's anchors, the experts weighted by ``weight``.

``Dist`` is the cosine distance of outputs flattened over tokens in both stages (the paper's
default). The input embeddings have no continuous input to anchor: they get the mean of the task
vectors, weighted by ``weight`` (the soup's value), as ``tsv`` and ``wudi`` treat tensors they do not
decompose.
Parameters (all global but ``weight``):

- ``weight`` (per model, default 1.0): the expert's share of the fitting loss (and of the
  embeddings' mean), >= 0; an expert of weight 0 is left out;
- ``anchors`` (default 32; the paper 64) and ``tokens`` (default 8; the paper 5 for RoBERTa):
  anchors per expert and part, and tokens per anchor;
- ``anchor_steps`` (default 100; the paper 1200 for ViT and RoBERTa, 200 for Llama-2-13B) and
  ``anchor_lr`` (default 1e-2, the paper's);
- ``fit_steps`` (default 200) and ``fit_lr`` (default 3e-5, within the paper's 1e-5 to 5e-5 for
  RoBERTa: Adam moves every entry by up to ``fit_lr`` per step, and larger rates overshoot the
  small task vectors; on the default toy zoo's dev split 1e-4 scored below the base model);
- ``init``: ``weight_rows`` (default; the paper's best) or ``gaussian`` (sigma 0.01);
- ``seed`` (default 0): the anchors' initialisation. On the CPU, at one torch thread (as ``soup-search
  merge`` runs it), a merge is bit-identical for a seed.

Simplifications: anchors are optimised for the last iterate (the authors' code keeps the best
loss seen); the sign of Eq. 1 is taken as the authors' code has it (the gradient of the
*similarity*, i.e. the descent direction, aligns with the task vector); the parts are fitted
independently, each on its own anchors, as in the paper. The whole models are needed (forward
and backward passes), so FDA runs only through ``soup-search merge``: the per-tensor paths (shard
actors, the search) refuse it. mergekit has no such method: ``to_yaml`` writes the recipe as is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from soup_search.errors import MergeError
from soup_search.merge.method import MergeMethod
from soup_search.merge.params import ParamSpec

if TYPE_CHECKING:  # torch is imported where tensors are computed (a trial process never loads it)
    import torch

#: how the anchors start (:func:`soup_search.merge.anchors.initial_anchors`)
INITS = ("weight_rows", "gaussian")
# name -> (smallest value, whether it must be whole), for the numeric global parameters
_NUMBERS = {"anchors": (1, True), "tokens": (1, True), "anchor_steps": (0, True), "anchor_lr": (0, False),
            "fit_steps": (0, True), "fit_lr": (0, False), "seed": (0, True)}
REFUSED = ("fda merges whole models (forward and backward passes through the base and the experts), not tensor "
           "by tensor: run its recipe with `soup-search merge RECIPE.yaml OUT`")


@dataclass(frozen=True)
class FDASettings:
    """The global parameters of one FDA merge (see the module docstring)."""

    anchors: int = 32
    tokens: int = 8
    anchor_steps: int = 100
    anchor_lr: float = 1e-2
    fit_steps: int = 200
    fit_lr: float = 3e-5
    init: str = "weight_rows"
    seed: int = 0

    @classmethod
    def of(cls, parameters: Mapping) -> FDASettings:
        """Settings from a recipe's top-level parameters (checked by :meth:`FDAMerge.canonical_parameters`)."""
        defaults = cls()
        return cls(**{k: type(getattr(defaults, k))(v) for k, v in parameters.items() if hasattr(defaults, k)})


def fda_merge(base, experts: list[tuple[torch.nn.Module, float]], settings: FDASettings) -> dict[str, torch.Tensor]:
    """The merged float32 state dict of ``base`` (a Llama-style causal LM) and ``(expert, weight)``
    pairs; an expert of weight 0 is left out, and the input embeddings get the weighted mean of the
    task vectors."""
    import torch

    from soup_search.merge.anchors import Targets, construct_anchors, fit_part, initial_anchors, model_parts

    base_state = {k: v.detach().float() for k, v in base.state_dict().items()}
    states = [({k: v.detach().float() for k, v in m.state_dict().items()}, w) for m, w in experts if w > 0]
    total = sum(w for _, w in states)
    merged = {k: v + sum(w / total * (s[k] - v) for s, w in states) for k, v in base_state.items()}
    gen = torch.Generator().manual_seed(settings.seed)
    for part in model_parts(base, settings.tokens):
        theta0 = part.params(base_state)
        targets = []
        for state, weight in states:
            theta = part.params(state)
            start = initial_anchors(part, theta, settings.anchors, settings.tokens, settings.init, gen)
            anchors, _ = construct_anchors(part, theta0, theta, start, settings.anchor_steps, settings.anchor_lr)
            with torch.no_grad():
                targets.append(Targets(anchors, part(theta, anchors), weight))
        fitted = fit_part(part, theta0, targets, settings.fit_steps, settings.fit_lr)
        merged.update({part.names[k]: v for k, v in fitted.items()})
    return merged


@dataclass(frozen=True)
class FDAMerge(MergeMethod):
    name: str = "fda"
    params: tuple = (
        ParamSpec("weight", float, "model", 1.0, help="share of this expert in the fitting loss"),
        ParamSpec("anchors", float, "global", FDASettings.anchors, help="anchors per expert and part"),
        ParamSpec("tokens", float, "global", FDASettings.tokens, help="tokens per anchor"),
        ParamSpec("anchor_steps", float, "global", FDASettings.anchor_steps, help="AdamW steps on the anchors"),
        ParamSpec("anchor_lr", float, "global", FDASettings.anchor_lr, help="learning rate of the anchors"),
        ParamSpec("fit_steps", float, "global", FDASettings.fit_steps, help="Adam steps fitting each part"),
        ParamSpec("fit_lr", float, "global", FDASettings.fit_lr, help="learning rate of the fit"),
        ParamSpec("init", str, "global", FDASettings.init, help="weight_rows or gaussian (sigma 0.01)"),
        ParamSpec("seed", float, "global", FDASettings.seed, help="seed of the anchors' initialisation"),
    )
    base: str = "required"
    whole_model: bool = True
    reference: str = "https://arxiv.org/abs/2510.21223"

    def canonical_parameters(self, parameters: dict) -> tuple[dict, list[str]]:
        problems = []
        for key, value in parameters.items():
            if key in _NUMBERS:
                low, whole = _NUMBERS[key]
                number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                if not number or value < low or (whole and value != int(value)) or (not whole and value <= low):
                    what = f"a whole number >= {low}" if whole else "a positive number"
                    problems.append(f"parameters.{key}: fda needs {what}, got {value!r}")
            elif key == "init" and value not in INITS:
                problems.append(f"parameters.init: {value!r} is not one of {', '.join(INITS)}")
        return parameters, problems

    def to_mergekit(self, data: dict) -> tuple[dict, str]:
        return data, "mergekit has no 'fda' merge method: run this recipe with soup-search merge"

    def prepare(self, params):
        raise MergeError(REFUSED)

    def merge(self, prepared, tensors, base):
        raise MergeError(REFUSED)

    def merge_checkpoints(self, recipe, paths: Mapping[str, Path]) -> dict[str, torch.Tensor]:
        """The merged float32 state dict of the recipe's checkpoints (model key -> directory)."""
        import torch
        from transformers import AutoModelForCausalLM  # a heavy import, for this method only
        from transformers.utils import logging as hf_logging

        def load(key: str):
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # no "Loading weights" bar per model
            try:
                return AutoModelForCausalLM.from_pretrained(paths[key], attn_implementation="eager",
                                                            dtype=torch.float32).eval()
            finally:
                if bars:
                    hf_logging.enable_progress_bar()

        plan = recipe.plan()
        weights = plan.params("").column("weight")
        bad = [f"{k}={w:g}" for k, w in zip(plan.keys, weights) if not (math.isfinite(w) and w >= 0)]
        if bad or not sum(weights) > 0:
            raise MergeError(f"fda: weights {', '.join(bad) or weights} must be >= 0 with a positive sum; "
                             "fix the models' weight parameters")
        settings = FDASettings.of(plan.params("").shared)
        return fda_merge(load(plan.base_key), [(load(k), w) for k, w in zip(plan.keys, weights)], settings)


fda = FDAMerge()
