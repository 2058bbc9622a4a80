"""Tiny real Llama checkpoints for tests (2 layers, 32 wide), written with safetensors.

Use these instead of mocking tensors: every test that needs a candidate set builds one.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from soup_search.zoo.tokenizer import build_char_tokenizer


def tiny_llama_config(**overrides) -> LlamaConfig:
    tok = build_char_tokenizer()
    kwargs = dict(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


def make_checkpoint(
    path: str | Path,
    seed: int = 0,
    max_shard_size: str | None = None,
    dtype: torch.dtype = torch.float32,
    **config_overrides,
) -> Path:
    """Write a randomly initialised tiny Llama checkpoint (config, safetensors, tokenizer) to ``path``.

    ``max_shard_size`` (e.g. ``"20KB"``) writes a sharded checkpoint with ``model.safetensors.index.json``.
    """
    path = Path(path)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(**config_overrides)).to(dtype)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(path, **kwargs)
    build_char_tokenizer().save_pretrained(path)
    return path


def make_candidates(root: str | Path, n: int = 3, **kwargs) -> list[Path]:
    """``n`` compatible tiny checkpoints ``root/m0 .. root/m{n-1}`` with different seeds."""
    root = Path(root)
    return [make_checkpoint(root / f"m{i}", seed=i, **kwargs) for i in range(n)]


def read_config(path: str | Path) -> dict:
    return json.loads((Path(path) / "config.json").read_text())
