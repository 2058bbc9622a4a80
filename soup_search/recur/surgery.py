"""Model surgery: a Llama checkpoint becomes a depth-recurrent one, saved and loaded with its code.

The recurrent model keeps every parent layer under its parent's name: the first ``P`` are the
prelude, the next ``R`` the recurrent block, the last ``C`` the coda. The new 2h → h adapter
starts as ``[0 | I]``: it passes the prelude's output through and ignores the state, so right
after surgery the model computes exactly the parent's function, whatever the number of
recurrences; continued training then teaches it to use the state.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from soup_search.errors import CandidateError, ConfigError
from soup_search.recur.modeling import RecurrentLlamaConfig, RecurrentLlamaForCausalLM

#: config keys of the parent that the recurrent config does not take over
_PARENT_ONLY = ("model_type", "architectures", "auto_map", "transformers_version")


def parse_split(text: str) -> tuple[int, int, int]:
    """``"1,1,0"`` -> ``(1, 1, 0)``: prelude, recurrent block and coda layer counts."""
    parts = [p.strip() for p in text.split(",")]
    try:
        split = tuple(int(p) for p in parts)
    except ValueError:
        split = ()
    if len(split) != 3 or min(split) < 0 or split[1] < 1:
        raise ConfigError("--split", [f"{text!r} is not P,R,C (three whole numbers, P and C >= 0, R >= 1); "
                                      "e.g. --split 1,1,0 for a 2-layer model"])
    return split


def check_split(split: tuple[int, int, int], num_layers: int) -> None:
    """A one-line error unless the split covers the parent's ``num_layers`` layers exactly."""
    if sum(split) != num_layers:
        p, r, c = split
        raise ConfigError("--split", [f"{p},{r},{c} covers {sum(split)} layers but the checkpoint has "
                                      f"{num_layers}; give three counts that sum to {num_layers}"])


def load_parent(path: str | Path) -> LlamaForCausalLM:
    """The parent Llama of ``path``; a one-line error for a missing folder or another architecture."""
    path = Path(path)
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as err:
        raise CandidateError(f"cannot read a checkpoint at {str(path)!r} ({str(err).splitlines()[0]}); "
                             "give a Hugging Face Llama checkpoint folder, e.g. zoo:default/base") from None
    if config.model_type != "llama":
        raise CandidateError(f"{str(path)!r} is a {config.model_type!r} model; recur retrofits Llama "
                             "checkpoints (such as the zoo's)")
    return LlamaForCausalLM.from_pretrained(path, local_files_only=True).float()


def retrofit(parent: LlamaForCausalLM, split: tuple[int, int, int], num_recurrences: int = 1,
             backprop_depth: int = 8) -> RecurrentLlamaForCausalLM:
    """The recurrent model of ``parent`` under ``split``, computing the parent's function at any depth."""
    check_split(split, parent.config.num_hidden_layers)
    fields = {k: v for k, v in parent.config.to_dict().items() if k not in _PARENT_ONLY}
    p, r, c = split
    config = RecurrentLlamaConfig(**{**fields, "prelude_layers": p, "recurrent_layers": r, "coda_layers": c,
                                     "num_recurrences": num_recurrences, "backprop_depth": backprop_depth,
                                     "use_cache": False})
    model = RecurrentLlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(parent.state_dict(), strict=False)
    assert set(missing) == {"model.adapter.weight"} and not unexpected, (missing, unexpected)
    h = config.hidden_size
    with torch.no_grad():
        model.model.adapter.weight.zero_()
        model.model.adapter.weight[:, h:] = torch.eye(h)
    return model


def save_recurrent(model: RecurrentLlamaForCausalLM, tokenizer, path: str | Path) -> None:
    """Write weights, config (with ``auto_map``), ``modeling.py`` and the tokenizer into ``path``."""
    model.config.register_for_auto_class("AutoConfig")
    model.register_for_auto_class("AutoModelForCausalLM")
    gen = model.generation_config
    gen.do_sample, gen.use_cache, gen.max_new_tokens = False, False, 16
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = (
        tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


def load_recurrent(path: str | Path):
    """A saved recurrent checkpoint and its tokenizer, through its own code, offline."""
    model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True, local_files_only=True)
    return model.eval(), AutoTokenizer.from_pretrained(path, trust_remote_code=True, local_files_only=True)
