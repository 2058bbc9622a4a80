"""A depth-recurrent Llama: prelude → recurrent block looped ``r`` times → coda (arXiv 2511.07384).

Self-contained (torch and transformers only): :func:`soup_search.recur.surgery.save_recurrent`
copies this file beside every checkpoint it writes, so the checkpoint loads anywhere with
``AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)``, without soup-search.

The forward pass, for ``r`` recurrences::

    e   = prelude(embed(tokens))                      # the prelude's output, computed once
    s_0 = truncated normal noise (training) or zeros (eval)
    s_i = block(adapter(concat[s_{i-1}, e]))          # adapter: Linear(2h -> h), i = 1..r
    y   = lm_head(norm(coda(s_r)))

Only the last ``backprop_depth`` iterations carry gradients (truncated backpropagation); the
earlier ones run under ``no_grad``. Weights keep the parent Llama's names (``model.layers.<i>``),
plus ``model.adapter.weight``. There is no KV cache: every generated token re-reads the prompt
(answers here are a few tokens long).
"""

from __future__ import annotations

import math

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import GenerationMixin, LlamaConfig
from transformers.masking_utils import create_causal_mask
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.llama.modeling_llama import (
    LlamaDecoderLayer,
    LlamaPreTrainedModel,
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
)


@strict
class RecurrentLlamaConfig(LlamaConfig):
    """A Llama config plus the split of its ``num_hidden_layers`` into prelude, block and coda."""

    model_type = "recur_llama"

    prelude_layers: int = 0
    recurrent_layers: int = 1
    coda_layers: int = 0
    #: recurrences of the block when a forward call does not say (generation reads this)
    num_recurrences: int = 1
    #: the last iterations that carry gradients in training (truncated backpropagation)
    backprop_depth: int = 8

    def validate_architecture(self):
        """Part of ``@strict`` validation: the split covers the layers, the block is not empty."""
        super().validate_architecture()
        split = (self.prelude_layers, self.recurrent_layers, self.coda_layers)
        if min(split) < 0 or self.recurrent_layers < 1 or sum(split) != self.num_hidden_layers:
            raise ValueError(f"split {split} must be >= 0, with a block of >= 1 layer, "
                             f"and sum to num_hidden_layers={self.num_hidden_layers}")
        if self.num_recurrences < 1 or self.backprop_depth < 1:
            raise ValueError("num_recurrences and backprop_depth must be >= 1")


class RecurrentLlamaModel(nn.Module):
    """The parts: embeddings, every decoder layer (prelude, block, coda in order), adapter, final norm."""

    def __init__(self, config: RecurrentLlamaConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList([LlamaDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.adapter = nn.Linear(2 * config.hidden_size, config.hidden_size, bias=False)
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(config=config)


class RecurrentLlamaForCausalLM(LlamaPreTrainedModel, GenerationMixin):
    """A causal LM whose middle layers loop; ``num_recurrences`` picks the depth at call time."""

    config_class = RecurrentLlamaConfig
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: RecurrentLlamaConfig):
        super().__init__(config)
        self.model = RecurrentLlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def _parts(self):
        p, r = self.config.prelude_layers, self.config.recurrent_layers
        layers = self.model.layers
        return layers[:p], layers[p:p + r], layers[p + r:]

    def initial_state(self, embedded: torch.Tensor) -> torch.Tensor:
        """s_0: truncated normal noise with std sqrt(2/(5h)) in training (Huginn's), zeros in eval."""
        if not self.training:
            return torch.zeros_like(embedded)
        std = math.sqrt(2 / (5 * self.config.hidden_size))
        return nn.init.trunc_normal_(torch.empty_like(embedded), std=std, a=-3 * std, b=3 * std)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        num_recurrences: int | None = None,
        backprop_depth: int | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        if kwargs.get("use_cache"):
            raise ValueError("this recurrent model keeps no KV cache; call it (or generate) with use_cache=False")
        r = int(num_recurrences or self.config.num_recurrences)
        depth = min(r, int(backprop_depth or self.config.backprop_depth))
        x = self.model.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        if position_ids is None:
            position_ids = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
        mask = create_causal_mask(config=self.config, inputs_embeds=x, attention_mask=attention_mask,
                                  past_key_values=None, position_ids=position_ids)
        context = {"attention_mask": mask, "position_ids": position_ids,
                   "position_embeddings": self.model.rotary_emb(x, position_ids=position_ids)}
        prelude, block, coda = self._parts()
        for layer in prelude:
            x = layer(x, **context)
        embedded, state = x, self.initial_state(x)
        with torch.no_grad():
            for _ in range(r - depth):
                state = self._iterate(state, embedded, block, context)
        for _ in range(depth):
            state = self._iterate(state, embedded, block, context)
        for layer in coda:
            state = layer(state, **context)
        hidden = self.model.norm(state)
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size)
        return CausalLMOutputWithPast(loss=loss, logits=logits)

    def _iterate(self, state, embedded, block, context):
        x = self.model.adapter(torch.cat([state, embedded], dim=-1))
        for layer in block:
            x = layer(x, **context)
        return x
