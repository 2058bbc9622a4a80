"""Functional dual anchors, part by part: a model's parts, anchor construction and fitting.

The pieces of :mod:`soup_search.merge.fda` (arXiv 2510.21223, Sec. 2.2-2.4), for Llama-style
causal LMs of transformers (``model.layers``, ``model.norm``, ``lm_head``, rotary positions):

- :func:`model_parts`: the parts FDA treats one at a time, as the paper's layer-wise scheme
  does: each decoder layer (its input is the residual stream, ``[anchors, tokens, hidden]``,
  under a causal mask), then the head (final norm + ``lm_head``, hidden states to logits);
- :func:`initial_anchors`: ``weight_rows`` samples rows of the expert's weight matrices that
  read the part's input (those with ``hidden`` input columns), ``gaussian`` draws
  ``N(0, sigma^2)`` with ``sigma =`` :data:`GAUSSIAN_SIGMA`;
- :func:`construct_anchors`: AdamW on the anchors so that the gradient of the representation
  distance at the base, ``-grad_theta Dist(f(theta, x), f(theta_i, x))`` at ``theta_0``,
  points along the task vector ``tau_i = theta_i - theta_0`` (:func:`gradient_mismatch`: the
  mean over the part's tensors of ``1 - cos``);
- :func:`fit_part`: Adam on the part's parameters, from the base's, so that its outputs on
  every expert's anchors match that expert's (weighted mean of ``Dist``).

``Dist`` is the paper's default, the cosine distance between two outputs, each flattened
over tokens. Everything runs in float32 on the CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call

from soup_search.errors import MergeError

GAUSSIAN_SIGMA = 0.01  # the paper's sigma for Gaussian anchors (Sec. 2.4, App. C.3)

Params = dict[str, torch.Tensor]  # a part's parameters by local name


class _Head(nn.Module):
    """The final norm and ``lm_head`` as one part: hidden states to logits."""

    def __init__(self, norm: nn.Module, lm_head: nn.Module):
        super().__init__()
        self.norm, self.lm_head = norm, lm_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(x))


@dataclass
class Part:
    """One part of a model: a module (its structure; parameters are passed in), its local
    parameter names mapped to checkpoint tensor names, and the extra arguments of its forward."""

    name: str
    module: nn.Module
    names: dict[str, str]  # local name -> checkpoint tensor name
    inputs: int  # width of one input token (the hidden size)
    kwargs: dict = field(default_factory=dict)

    def params(self, state: Mapping[str, torch.Tensor]) -> Params:
        """This part's tensors of a state dict, by local name, as float32."""
        return {local: state[full].float() for local, full in self.names.items()}

    def __call__(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.module, params, (x,), self.kwargs)


def model_parts(model: nn.Module, tokens: int) -> list[Part]:
    """The decoder layers and the head of a Llama-style ``...ForCausalLM``, for anchors of ``tokens`` tokens."""
    body = getattr(model, "model", None)
    needed = ("layers", "norm", "rotary_emb", "embed_tokens")
    if body is None or not all(hasattr(body, a) for a in needed) or not hasattr(model, "lm_head"):
        raise MergeError(f"fda: {type(model).__name__} is not a Llama-style causal LM (model.layers, model.norm, "
                         "rotary embeddings, lm_head); merge it with another method")
    hidden = model.config.hidden_size
    probe = torch.zeros(1, tokens, hidden)
    position_ids = torch.arange(tokens).unsqueeze(0)
    with torch.no_grad():
        rotary = tuple(t.float() for t in body.rotary_emb(probe, position_ids))
    causal = torch.full((tokens, tokens), torch.finfo(torch.float32).min).triu(1)[None, None]
    layer_kwargs = {"attention_mask": causal, "position_embeddings": rotary, "position_ids": position_ids}
    prefix = _prefix(model, body)
    parts = []
    for i, layer in enumerate(body.layers):
        names = {n: f"{prefix}layers.{i}.{n}" for n, _ in layer.named_parameters()}
        parts.append(Part(f"{prefix}layers.{i}", layer, names, hidden, layer_kwargs))
    head = _Head(body.norm, model.lm_head)
    names = {f"norm.{n}": f"{prefix}norm.{n}" for n, _ in body.norm.named_parameters()}
    names.update({f"lm_head.{n}": f"lm_head.{n}" for n, _ in model.lm_head.named_parameters()})
    parts.append(Part("head", head, names, hidden))
    return parts


def _prefix(model: nn.Module, body: nn.Module) -> str:
    name = next(n for n, m in model.named_children() if m is body)
    return f"{name}."


def initial_anchors(part: Part, expert: Params, n: int, tokens: int, init: str,
                    gen: torch.Generator) -> torch.Tensor:
    """``[n, tokens, hidden]`` starting anchors: rows of the expert's matrices that read the
    part's input (without replacement while they last), or Gaussian noise of std GAUSSIAN_SIGMA."""
    if init == "gaussian":
        return torch.randn(n, tokens, part.inputs, generator=gen) * GAUSSIAN_SIGMA
    rows = torch.cat([t for t in expert.values() if t.dim() == 2 and t.shape[1] == part.inputs])
    need = n * tokens
    order = torch.cat([torch.randperm(len(rows), generator=gen) for _ in range(-(-need // len(rows)))])
    return rows[order[:need]].reshape(n, tokens, part.inputs).clone()


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per anchor: ``1 - cos`` of two outputs flattened over tokens (``[n]``)."""
    return 1 - nn.functional.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


def task_vector(base: Params, expert: Params) -> Params:
    """``theta_i - theta_0`` of the tensors where they differ (the others carry no direction)."""
    return {k: expert[k] - base[k] for k in base if not torch.equal(expert[k], base[k])}


def gradient_mismatch(part: Part, base: Params, expert: Params, anchors: torch.Tensor,
                      create_graph: bool = False) -> torch.Tensor:
    """The construction loss: mean over the part's changed tensors of
    ``1 - cos(-grad_theta mean_j Dist(f(theta, x_j), f(theta_i, x_j)) at theta_0, tau_i)``."""
    tau = task_vector(base, expert)
    theta = {k: v.detach().requires_grad_(k in tau) for k, v in base.items()}
    dist = cosine_distance(part(theta, anchors), part(expert, anchors)).mean()
    grads = torch.autograd.grad(dist, [theta[k] for k in tau], create_graph=create_graph)
    cos = [nn.functional.cosine_similarity(-g.flatten(), tau[k].flatten(), dim=0) for g, k in zip(grads, tau)]
    return 1 - torch.stack(cos).mean()


def construct_anchors(part: Part, base: Params, expert: Params, start: torch.Tensor, steps: int,
                      lr: float) -> tuple[torch.Tensor, list[float]]:
    """Anchors from ``start`` after ``steps`` of AdamW (full batch) on :func:`gradient_mismatch`;
    returns them and the loss before each step. An expert equal to the base here keeps ``start``."""
    anchors = start.clone().requires_grad_(True)
    if not task_vector(base, expert):
        return anchors.detach(), []
    opt = torch.optim.AdamW([anchors], lr=lr)
    losses = []
    for _ in range(steps):
        loss = gradient_mismatch(part, base, expert, anchors, create_graph=True)
        anchors.grad, = torch.autograd.grad(loss, anchors)
        opt.step()
        losses.append(loss.item())
    return anchors.detach(), losses


@dataclass(frozen=True)
class Targets:
    """One expert's anchors of a part, that expert's outputs on them, and its share of the fit."""

    anchors: torch.Tensor
    outputs: torch.Tensor
    weight: float


def fit_loss(part: Part, params: Params, targets: Sequence[Targets]) -> torch.Tensor:
    """Weighted mean over experts of the mean ``Dist`` to their outputs on their anchors."""
    total = sum(t.weight for t in targets)
    return sum(t.weight / total * cosine_distance(part(params, t.anchors), t.outputs).mean() for t in targets)


def fit_part(part: Part, start: Params, targets: Sequence[Targets], steps: int, lr: float) -> Params:
    """The part's parameters after ``steps`` of Adam (full batch) on :func:`fit_loss`, from ``start``."""
    params = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    opt = torch.optim.Adam(params.values(), lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        fit_loss(part, params, targets).backward()
        opt.step()
    return {k: v.detach() for k, v in params.items()}
